"""Ingestion throughput: the tracking API served on loopback, driven by wrk.

Measures, in one run against one benchmark database:
  - a bare WSGI answer (the cheapest endpoint the same server can serve: a fixed 200 from the
    WSGI callable, no Django) and a bare Django view answering 200 (server + middleware, no work),
  - single-event POST /v1/track: requests/s with p50/p99 latency,
  - POST /v1/batch with 100-event batches: events/s,
  - raw COPY of the same rows into events_event through psycopg (the storage ceiling),
and prints a table with the ratios, and issue 20's two ratios with the floors of the same run:
/v1/batch events/s against raw COPY's rows/s, /v1/track req/s against the bare views' req/s.

    .venv/bin/python bench/ingest.py                      # granian (the production server), defaults
    .venv/bin/python bench/ingest.py --server both        # and gunicorn (pip install -e '.[bench]')

It needs `wrk` (apt-get install wrk), a PostgreSQL server (DATABASE_URL's host; the benchmark
database is created and emptied by the script) and Redis (REDIS_URL; the rate limiter and the
Celery wake-ups use it). No Celery worker runs: the queue grows during the run, as it would
while workers catch up, and is emptied at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

EVENT_TEMPLATE = (
    '{"type":"track","event":"Product Viewed","userId":"user-%d","anonymousId":"anon-%d",'
    '"messageId":"%s","timestamp":"2026-01-01T12:00:00.000Z","sentAt":"2026-01-01T12:00:01.000Z",'
    '"properties":{"product_id":"sku-42","price":19.99,"currency":"EUR","category":"shoes"},'
    '"context":{"library":{"name":"analytics-python","version":"2.3.0"},"ip":"203.0.113.9",'
    '"page":{"path":"/products/42","url":"https://shop.example/products/42"},'
    '"userAgent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/130.0 Safari/537.36"}}'
)

# wrk's Lua: every request carries fresh messageIds (a repeated one would be deduplicated and
# cost less than real traffic). done() prints one JSON line this script parses.
LUA = r"""
local counter = 0
local threads = {}
local tid = 0
function setup(thread)
  tid = tid + 1
  thread:set("tid", tid)
  table.insert(threads, thread)
end
function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Basic " .. args[1]
  batch = tonumber(args[2])
  template = args[3]
end
function request()
  counter = counter + 1
  if batch == 0 then
    local id = tid .. "-" .. counter .. "-" .. math.random(1e9)
    return wrk.format(nil, nil, nil, string.format(template, counter, counter, id))
  end
  local items = {}
  for i = 1, batch do
    local n = counter * batch + i
    items[i] = string.format(template, n, n, tid .. "-" .. n .. "-" .. math.random(1e9))
  end
  local body = '{"batch":[' .. table.concat(items, ",") .. '],"sentAt":"2026-01-01T12:00:01.000Z"}'
  return wrk.format(nil, nil, nil, body)
end
function done(summary, latency, requests)
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"non2xx":%d,"errors":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""

BARE_LUA = LUA.replace('wrk.method = "POST"', 'wrk.method = "GET"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_urls(name: str) -> tuple[str, str]:
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    parts = urlsplit(base)
    admin = urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, ""))
    bench = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))
    return admin, bench


def prepare_database(name: str, env: dict) -> None:
    import psycopg

    admin, _ = database_urls(name)
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--verbosity", "0"], cwd=ROOT, env=env, check=True
    )


def seed_source(env: dict) -> str:
    code = (
        "from events.models import Source;"
        # The bench measures the write path with the limiter in it, not the limit itself.
        "s, _ = Source.objects.update_or_create(name='bench', "
        "defaults={'kind': 'server', 'enabled': True, 'rate_limit_per_second': 10**9});"
        "print(s.pk, s.write_key)"
    )
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return out[-1]


def empty_tables(bench_url: str) -> None:
    import psycopg

    time.sleep(1)  # let the server finish requests wrk gave up on, or TRUNCATE deadlocks with them
    with psycopg.connect(bench_url, autocommit=True) as conn:
        # CASCADE: tables of later apps (identity) reference events_event.
        conn.execute(
            "TRUNCATE events_ingestqueue, events_ingestbatch, events_eventdedup, events_rejectedevent, "
            "events_event CASCADE"
        )
        # No VACUUM ANALYZE here: statistics saying "empty" made the foreign-key checks plan sequential
        # scans of the growing tables (autovacuum is off on the shared server, so they never
        # re-plan): Postgres CPU per /v1/track request 0.39 ms against 0.14 ms without (measured).
        # After TRUNCATE the tables count as never analysed and get index scans.


def server_command(server: str, port: int, workers: int, threads: int) -> list[str]:
    if server == "gunicorn":
        if not (BIN / "gunicorn").exists():
            raise SystemExit("gunicorn is not installed: pip install -e '.[bench]'")
        cmd = [str(BIN / "gunicorn"), "cdp_crm.wsgi", "-b", f"127.0.0.1:{port}", "-w", str(workers)]
        if threads > 1:
            cmd += ["--threads", str(threads), "-k", "gthread"]
        return cmd + ["--backlog", "2048"]
    granian = BIN / "granian"
    return [
        str(granian),
        "--interface",
        "wsgi",
        "cdp_crm.wsgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--blocking-threads",
        str(threads),
        "--no-ws",
        "--log-level",
        "warning",
    ]


def wait_until_up(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the server did not answer {url}")


def run_wrk(url: str, *, lua: str, auth: str, batch: int, seconds: int, connections: int, threads: int):
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua)
        script = f.name
    children_before = _children_cpu()
    try:
        out = subprocess.run(
            ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--latency",
             "-s", script, url, "--", auth, str(batch), EVENT_TEMPLATE],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    finally:
        os.unlink(script)
    line = next(line for line in out.splitlines() if line.startswith("BENCH "))
    result = json.loads(line[6:])
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["wrk_cpu_ms"] = (_children_cpu() - children_before) * 1000 / result["requests"]
    return result


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def copy_rows(bench_url: str, source_id: int, rows: int) -> float:
    """Raw COPY of rows shaped like the benchmark's events: the storage ceiling."""
    import psycopg

    now = datetime.now(UTC)
    props = json.dumps({"product_id": "sku-42", "price": 19.99, "currency": "EUR", "category": "shoes"})
    context = json.dumps(json.loads(EVENT_TEMPLATE % (1, 1, "x"))["context"])
    columns = (
        "source_id, message_id, type, event, anonymous_id, user_id, group_id, previous_id, properties, "
        "traits, context, timestamp, original_timestamp, sent_at, received_at, is_bot"
    )
    with psycopg.connect(bench_url) as conn:
        started = time.perf_counter()
        with conn.cursor().copy(f"COPY events_event ({columns}) FROM STDIN") as copy:
            for n in range(rows):
                copy.write_row(
                    (source_id, uuid.uuid4().hex, "track", "Product Viewed", f"anon-{n}", f"user-{n}", "",
                     "", props, "{}", context, now, now, now, now, False)
                )  # fmt: skip
        conn.commit()
        return rows / (time.perf_counter() - started)


def _cpu_seconds(pids) -> float:
    import psutil

    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def _server_pids(proc: subprocess.Popen) -> list[int]:
    import psutil

    root = psutil.Process(proc.pid)
    return [root.pid] + [child.pid for child in root.children(recursive=True)]


def _backend_pids(bench_url: str) -> list[int]:
    import psycopg

    with psycopg.connect(bench_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return [pid for (pid,) in rows]


def _commits(bench_url: str) -> int:
    import psycopg

    with psycopg.connect(bench_url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        return conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()[0]


def measured(run, proc: subprocess.Popen, bench_url: str) -> dict:
    """Run wrk and also count the CPU the server and its Postgres backends spent: on a shared
    machine req/s depends on the neighbours, CPU per request does not (much). Commits per request
    shows how many requests group commit put in one transaction (statistics lag ~0.5 s)."""
    server = _server_pids(proc)
    backends = _backend_pids(bench_url)
    app_before, db_before = _cpu_seconds(server), _cpu_seconds(backends)
    commits_before = _commits(bench_url)
    result = run()
    time.sleep(1)  # the cumulative statistics are flushed at most once a second
    result["requests_per_commit"] = result["requests"] / max(_commits(bench_url) - commits_before, 1)
    # backends opened during the run (new connections) are counted from zero
    new_backends = [pid for pid in _backend_pids(bench_url) if pid not in backends]
    result["app_cpu_ms"] = (_cpu_seconds(server) - app_before) * 1000 / result["requests"]
    result["db_cpu_ms"] = (
        (_cpu_seconds(backends) - db_before + _cpu_seconds(new_backends)) * 1000 / result["requests"]
    )
    return result


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def bench_server(server: str, args, env: dict, auth: str, bench_url: str) -> dict:
    port = free_port()
    cmd = server_command(server, port, args.workers, args.threads)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}/bench/ok", proc)
        run = dict(seconds=args.seconds, connections=args.connections, threads=args.wrk_threads)
        results = {"server": server, "load_before": loadavg()}
        # warm-up: connections, imports, source cache, prepared plans
        run_wrk(f"{base}/v1/track", lua=LUA, auth=auth, batch=0, **{**run, "seconds": 2})
        results["wsgi"] = measured(
            lambda: run_wrk(f"{base}/bench/wsgi-ok", lua=BARE_LUA, auth=auth, batch=0, **run), proc, bench_url
        )
        results["bare"] = measured(
            lambda: run_wrk(f"{base}/bench/ok", lua=BARE_LUA, auth=auth, batch=0, **run), proc, bench_url
        )
        empty_tables(bench_url)
        results["track"] = measured(
            lambda: run_wrk(f"{base}/v1/track", lua=LUA, auth=auth, batch=0, **run), proc, bench_url
        )
        empty_tables(bench_url)
        results["batch"] = measured(
            lambda: run_wrk(f"{base}/v1/batch", lua=LUA, auth=auth, batch=args.batch, **run), proc, bench_url
        )
        results["load_after"] = loadavg()
        return results
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def _cpu(result: dict) -> str:
    return (
        f"{result['app_cpu_ms']:>16.2f}{result['db_cpu_ms']:>15.2f}{result['wrk_cpu_ms']:>9.2f}"
        f"{result['requests_per_commit']:>11.1f}"
    )


def _ceiling(result: dict) -> float:
    """Requests/s that 2 idle cores would serve at the CPU each request cost in this run
    (server, Postgres backends and wrk; Redis's own CPU is not counted)."""
    total_ms = result["app_cpu_ms"] + result["db_cpu_ms"] + result["wrk_cpu_ms"]
    return (os.cpu_count() or 1) * 1000 / total_ms


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--server", choices=["gunicorn", "granian", "both"], default="granian")
    parser.add_argument("--database", default="cdp_crm_bench")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--threads", type=int, default=8, help="threads per worker (gunicorn gthread, granian)"
    )
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--copy-rows", type=int, default=200_000)
    args = parser.parse_args()

    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install wrk")
    _, bench_url = database_urls(args.database)
    env = {
        **os.environ,
        "DATABASE_URL": bench_url,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY", "bench-" + uuid.uuid4().hex),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "CDP_BENCH_URLS": "1",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    prepare_database(args.database, env)
    write_key = seed_source(env)
    import base64

    import psycopg

    auth = base64.b64encode(f"{write_key}:".encode()).decode()
    with psycopg.connect(bench_url) as conn:
        source_id = conn.execute("SELECT id FROM events_source WHERE write_key = %s", [write_key]).fetchone()[
            0
        ]

    servers = ["gunicorn", "granian"] if args.server == "both" else [args.server]
    all_results = [bench_server(server, args, env, auth, bench_url) for server in servers]
    empty_tables(bench_url)
    copy_rps = copy_rows(bench_url, source_id, args.copy_rows)
    empty_tables(bench_url)

    print()
    print(
        f"cores: {os.cpu_count()}  workers: {args.workers}  threads/worker: {args.threads}  "
        f"wrk: {args.wrk_threads} thread(s), {args.connections} connections, {args.seconds} s each  "
        f"batch: {args.batch} events"
    )
    print(f"raw COPY into events_event: {copy_rps:,.0f} rows/s ({args.copy_rows:,} rows)")
    for r in all_results:
        wsgi, bare, track, batch = r["wsgi"], r["bare"], r["track"], r["batch"]
        batch_eps = batch["rps"] * args.batch
        print(f"\n{r['server']} (load average before {r['load_before']}, after {r['load_after']})")
        print(
            f"{'endpoint':<24}{'req/s':>10}{'events/s':>11}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}"
            f"{'app CPU ms/req':>16}{'db CPU ms/req':>15}{'wrk CPU':>9}{'req/commit':>11}  ratio"
        )
        print(
            f"{'bare WSGI answer':<24}{wsgi['rps']:>10,.0f}{'':>11}{wsgi['p50_us'] / 1000:>9.1f}"
            f"{wsgi['p99_us'] / 1000:>9.1f}{wsgi['non2xx']:>9}{_cpu(wsgi)}"
        )
        print(
            f"{'bare Django view':<24}{bare['rps']:>10,.0f}{'':>11}{bare['p50_us'] / 1000:>9.1f}"
            f"{bare['p99_us'] / 1000:>9.1f}{bare['non2xx']:>9}{_cpu(bare)}"
        )
        print(
            f"{'POST /v1/track':<24}{track['rps']:>10,.0f}{track['rps']:>11,.0f}"
            f"{track['p50_us'] / 1000:>9.1f}"
            f"{track['p99_us'] / 1000:>9.1f}{track['non2xx']:>9}{_cpu(track)}  "
            f"{track['rps'] / wsgi['rps']:.2f} of bare WSGI, "
            f"{track['rps'] / bare['rps']:.2f} of bare Django, "
            f"{track['rps'] / copy_rps:.3f} of COPY"
        )
        print(
            f"{'POST /v1/batch (' + str(args.batch) + ')':<24}{batch['rps']:>10,.0f}{batch_eps:>11,.0f}"
            f"{batch['p50_us'] / 1000:>9.1f}{batch['p99_us'] / 1000:>9.1f}{batch['non2xx']:>9}{_cpu(batch)}  "
            f"{batch['rps'] / bare['rps']:.2f} of bare (requests), {batch_eps / copy_rps:.2f} of COPY"
        )
        print(
            f"CPU-bound ceiling on {os.cpu_count()} idle cores at this run's CPU per request: "
            f"/v1/track {_ceiling(track):,.0f} req/s, /v1/batch {_ceiling(batch) * args.batch:,.0f} events/s"
        )
        ok_track = track["rps"] >= 2000 and track["p99_us"] < 50_000
        ok_batch = batch_eps >= 30_000
        print(
            f"targets: /v1/track >= 2,000 req/s with p99 < 50 ms: {'met' if ok_track else 'MISSED'}; "
            f"/v1/batch >= 30,000 events/s: {'met' if ok_batch else 'MISSED'}"
        )
        batch_ratio, track_wsgi, track_django = (
            batch_eps / copy_rps,
            track["rps"] / wsgi["rps"],
            track["rps"] / bare["rps"],
        )
        print(
            f"issue 20 (floors from this run): /v1/batch {batch_eps:,.0f} events/s / raw COPY "
            f"{copy_rps:,.0f} "
            f"rows/s = {batch_ratio:.2f} (>= 0.5: {'met' if batch_ratio >= 0.5 else 'MISSED'}); "
            f"/v1/track {track['rps']:,.0f} req/s / bare WSGI {wsgi['rps']:,.0f} = {track_wsgi:.2f} "
            f"(>= 0.6: {'met' if track_wsgi >= 0.6 else 'MISSED'}), / bare Django view {bare['rps']:,.0f} "
            f"= {track_django:.2f} (>= 0.6: {'met' if track_django >= 0.6 else 'MISSED'})"
        )


if __name__ == "__main__":
    main()
