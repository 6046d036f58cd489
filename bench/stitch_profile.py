"""Profile the stitching worker in-process: bench/pipeline.py's traffic, drained by this process.

The first run fills a template database (`<database>_filled`: the app, one realtime segment and
N events accepted through /v1/batch with no worker running, as `pipeline.py --drain` does). Each
run copies the template into `<database>` and drains it here, in one process, with
`ingest_queue_process` in a loop (the worker's claim), timed, and under cProfile with --profile.

    .venv/bin/python bench/stitch_profile.py --events 10000                  # timing only
    .venv/bin/python bench/stitch_profile.py --events 10000 --profile 40     # top 40 by tottime
    .venv/bin/python bench/stitch_profile.py --refill ...                    # a new template

The events/s of one process is not the pipeline's figure (that is bench/pipeline.py's, with two
worker processes, the web and beat on the box); it is for comparing code on the same template.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import io
import os
import pstats
import sys
import time
from pathlib import Path

BENCH_DIR = str(Path(__file__).resolve().parent)
sys.path.insert(0, BENCH_DIR)

from _common import ROOT, database_urls, stop  # noqa: E402

# bench/pipeline.py under another name: the app has a `pipeline` package too.
_spec = importlib.util.spec_from_file_location("bench_pipeline", Path(BENCH_DIR) / "pipeline.py")
_bench_pipeline = importlib.util.module_from_spec(_spec)
sys.modules["bench_pipeline"] = _bench_pipeline
_spec.loader.exec_module(_bench_pipeline)
Bench = _bench_pipeline.Bench
sys.path[:] = [str(ROOT)] + [p for p in sys.path if p != BENCH_DIR]


def _exists(admin: str, name: str) -> bool:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        return bool(conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone())


def fill(args: argparse.Namespace, template: str) -> None:
    """The template: N events queued, nothing stitched."""
    bench_args = argparse.Namespace(
        database=template, drain=args.events, people=args.people, new_share=args.new_share, seed=args.seed
    )
    bench = Bench(bench_args)
    bench.start()
    try:
        threads = bench.send(seconds=3600, rate=0, total=args.events)
        for thread in threads:
            thread.join()
        print(f"filled {template}: {bench.backlog():,} events queued", flush=True)
    finally:
        for proc in (bench.web, bench.beat, bench.redis):
            stop(proc)


def copy_template(admin: str, template: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ANY(%s)",
            [[name, template]],
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--new-share", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--limit", type=int, default=0, help="events per claim (default: DRAIN_BATCH)")
    parser.add_argument("--profile", type=int, default=0, help="print the top N functions by tottime")
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--callees", default="", help="also print the callees of functions matching this")
    parser.add_argument("--sql", type=int, default=0, help="print the N statements that took longest")
    parser.add_argument("--refill", action="store_true", help="build the template again")
    parser.add_argument("--database", default="cdp_crm_bench_stitch_prof")
    args = parser.parse_args()

    admin, url = database_urls(args.database)
    template = f"{args.database}_filled_{args.events}"
    if args.refill or not _exists(admin, template):
        fill(args, template)
    copy_template(admin, template, args.database)

    os.environ.update(
        DATABASE_URL=url,
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="bench-stitch-profile",
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        LOG_LEVEL="WARNING",
        REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/5"),  # nothing is consumed from it
        PROFILE_UPDATE_HOOK="",  # no Redis here: segments are not evaluated in this process
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cdp_crm.settings")
    import django

    django.setup()
    from django.db import connection

    from events import services, tasks

    limit = args.limit or tasks.DRAIN_BATCH
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM events_event")
        (total,) = cursor.fetchone()
    profiler = cProfile.Profile() if args.profile else None
    statements: dict[str, list[float]] = {}

    def timed(execute, sql, params, many, context):
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            entry = statements.setdefault(" ".join(sql.split())[:110], [0, 0.0])
            entry[0] += 1
            entry[1] += time.perf_counter() - began

    if args.sql:
        connection.execute_wrappers.append(timed)
    claims = 0
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    while processed := services.ingest_queue_process(limit=limit):
        claims += 1
        del processed
    if profiler:
        profiler.disable()
    seconds = time.perf_counter() - started
    print(
        f"drained {total:,} events in {claims} claims of {limit} in {seconds:.2f} s = "
        f"{total / seconds:,.0f} events/s (one process{', under cProfile' if profiler else ''}); "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    if args.sql:
        print(f"{'calls':>6} {'s':>7}  statement (client time: binding, round trip, server)")
        for sql, (calls, spent) in sorted(statements.items(), key=lambda kv: -kv[1][1])[: args.sql]:
            print(f"{calls:>6} {spent:7.3f}  {sql}")
    if profiler:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out).sort_stats(args.sort)
        stats.print_stats(args.profile)
        if args.callees:
            stats.print_callees(args.callees)
        print(out.getvalue())


if __name__ == "__main__":
    main()
