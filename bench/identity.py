"""Identity stitching: how fast an identify shows up in the CRM under load, and the worker's rate.

Starts the app (granian, as `make run` does), one Celery worker and beat against a scratch
database and a private Redis, then:

  1. latency — a steady background load of page/track events from anonymous visitors (default
     500 events/s), and every --probe-interval seconds a new visitor who views two pages and then
     calls /v1/identify with a fresh email. From the 200 on that identify, the script polls the
     CRM (GET /api/v1/contacts/?email=..., what the contact list and page read) until the person
     is there, identified, with the pages they viewed before identifying. It reports p50/p95/max.
  2. throughput — with the worker stopped, --backlog events are accepted through the API; the
     worker is started and the time to drain the queue gives the worker's events/s.

    .venv/bin/python bench/identity.py
    .venv/bin/python bench/identity.py --rate 500 --seconds 60 --backlog 20000
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    ROOT,
    database_urls,
    free_port,
    fresh_database,
    manage_shell,
    scratch_env,
    seed_source,
    start_celery,
    start_redis,
    start_web,
    stop,
)


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))] if values else float("nan")


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.worker: subprocess.Popen | None = None
        self.errors = 0

    def start(self) -> None:
        self.redis_port = free_port()
        self.redis_dir = ROOT / ".devdata" / "bench-identity-redis"
        self.redis = start_redis(self.redis_port, self.redis_dir)
        _, self.db_url = database_urls(self.args.database)
        self.env = scratch_env(self.db_url, self.redis_port)
        fresh_database(self.args.database, self.env)
        self.write_key = seed_source(self.env, "bench-identity")
        self.token = manage_shell(
            self.env,
            "from accounts import services;"
            "from accounts.models import Role;"
            "u = services.user_create(username='bench', password=None, role=Role.ADMIN);"
            "print(services.api_token_create(user=u, name='bench')[1])",
        ).split()[-1]
        self.port = free_port()
        self.web = start_web(self.env, self.port)
        self.beat = start_celery(self.env, "beat", schedule=self.redis_dir / "beat-schedule")

    def start_worker(self) -> None:
        self.worker = start_celery(self.env, "worker", concurrency=self.args.concurrency)

    def shutdown(self) -> None:
        for proc in (self.web, self.worker, self.beat, self.redis):
            stop(proc)

    # --- HTTP

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def send(self, conn: http.client.HTTPConnection, events: list[dict]) -> int:
        auth = "Basic " + base64.b64encode(f"{self.write_key}:".encode()).decode()
        body = json.dumps({"batch": events, "sentAt": datetime.now(UTC).isoformat()}).encode()
        conn.request("POST", "/v1/batch", body, {"Content-Type": "application/json", "Authorization": auth})
        response = conn.getresponse()
        response.read()
        return response.status

    def contact_by_email(self, conn: http.client.HTTPConnection, email: str) -> dict | None:
        conn.request(
            "GET", f"/api/v1/contacts/?email={email}", headers={"Authorization": f"Token {self.token}"}
        )
        response = conn.getresponse()
        data = json.loads(response.read())
        results = data.get("results", [])
        return results[0] if results else None

    def events_of(self, conn: http.client.HTTPConnection, contact_id: int) -> int:
        conn.request(
            "GET", f"/api/v1/contacts/{contact_id}/events/", headers={"Authorization": f"Token {self.token}"}
        )
        response = conn.getresponse()
        data = json.loads(response.read())
        return data.get("count", len(data.get("results", [])))

    @staticmethod
    def event(kind: str, anonymous_id: str, **extra) -> dict:
        return {
            "type": kind,
            "messageId": uuid.uuid4().hex,
            "anonymousId": anonymous_id,
            "timestamp": datetime.now(UTC).isoformat(),
            **extra,
        }

    # --- 1. latency under load

    def background(self, stop_at: float) -> None:
        conn = self.connection()
        rng = random.Random(1)
        batch = 10
        interval = batch / self.args.rate
        due = time.monotonic()
        while due < stop_at:
            if (delay := due - time.monotonic()) > 0:
                time.sleep(delay)
            events = []
            for _ in range(batch):
                visitor = f"bg-{rng.randrange(20_000)}"
                if rng.random() < 0.7:
                    path = rng.choice(["/", "/pricing", "/docs", "/blog"])
                    events.append(self.event("page", visitor, name=path, properties={"path": path}))
                else:
                    events.append(self.event("track", visitor, event="Clicked CTA"))
            try:
                if self.send(conn, events) != 200:
                    self.errors += 1
            except (OSError, http.client.HTTPException):
                self.errors += 1
                conn = self.connection()
            due += interval

    def probe(self, n: int) -> float | None:
        conn = self.connection()
        visitor = f"probe-{n}-{uuid.uuid4().hex[:6]}"
        email = f"probe{n}-{uuid.uuid4().hex[:6]}@bench.test"
        pages = [self.event("page", visitor, name=p, properties={"path": p}) for p in ("/", "/pricing")]
        if self.send(conn, pages) != 200:
            return None
        identify = self.event("identify", visitor, userId=f"user-{visitor}", traits={"email": email})
        if self.send(conn, [identify]) != 200:
            return None
        accepted = time.monotonic()
        while time.monotonic() - accepted < 30:
            contact = self.contact_by_email(conn, email)
            if contact and self.events_of(conn, contact["id"]) >= 3:
                return time.monotonic() - accepted
            time.sleep(0.05)
        return float("inf")

    def latency(self) -> tuple[list[float], float]:
        self.start_worker()
        time.sleep(3)
        stop_at = time.monotonic() + self.args.seconds
        loader = threading.Thread(target=self.background, args=(stop_at,), daemon=True)
        started = time.monotonic()
        loader.start()
        results: list[float] = []
        n = 0
        time.sleep(2)  # let the load settle
        while time.monotonic() < stop_at - 2:
            began = time.monotonic()
            result = self.probe(n)
            if result is not None:
                results.append(result)
            n += 1
            time.sleep(max(0.0, self.args.probe_interval - (time.monotonic() - began)))
        loader.join()
        return results, time.monotonic() - started

    # --- 2. worker throughput

    def queue_depth(self) -> int:
        import psycopg

        with psycopg.connect(self.db_url, autocommit=True) as conn:
            return conn.execute(
                "SELECT (SELECT count(*) FROM events_ingestqueue WHERE dead_at IS NULL)"
                " + (SELECT coalesce(sum(size), 0) FROM events_ingestbatch)"
            ).fetchone()[0]

    def throughput(self) -> tuple[int, float]:
        while self.queue_depth():
            time.sleep(0.5)
        stop(self.worker)
        conn = self.connection()
        rng = random.Random(2)
        total = 0
        while total < self.args.backlog:
            events = []
            for _ in range(100):
                visitor = f"tp-{rng.randrange(self.args.backlog // 5)}"
                roll = rng.random()
                if roll < 0.05:
                    events.append(
                        self.event(
                            "identify", visitor, userId=f"u-{visitor}", traits={"email": f"{visitor}@tp.test"}
                        )
                    )
                elif roll < 0.7:
                    events.append(
                        self.event("page", visitor, name="/pricing", properties={"path": "/pricing"})
                    )
                else:
                    events.append(self.event("track", visitor, event="Clicked CTA"))
            if self.send(conn, events) == 200:
                total += len(events)
        backlog = self.queue_depth()
        began = time.monotonic()
        self.start_worker()
        while self.queue_depth():
            time.sleep(0.2)
        return backlog, time.monotonic() - began


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=500, help="background events per second")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--probe-interval", type=float, default=0.5)
    parser.add_argument("--backlog", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=2, help="worker processes")
    parser.add_argument("--database", default="cdp_crm_bench_identity")
    args = parser.parse_args()

    bench = Bench(args)
    bench.start()
    try:
        latencies, seconds = bench.latency()
        backlog, drain_seconds = bench.throughput()
    finally:
        bench.shutdown()
    seen = [x for x in latencies if x != float("inf")]
    print()
    print(
        f"background load: {args.rate:.0f} events/s for {seconds:.0f} s ({bench.errors} failed requests); "
        f"worker: {args.concurrency} process(es); "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print(
        f"identify -> visible in the CRM with earlier pages: {len(latencies)} probes, "
        f"p50 {percentile(seen, 0.5) * 1000:.0f} ms, p95 {percentile(seen, 0.95) * 1000:.0f} ms, "
        f"max {max(seen) * 1000 if seen else float('nan'):.0f} ms, "
        f"not visible within 30 s: {len(latencies) - len(seen)}"
    )
    p95 = percentile(seen, 0.95) if len(seen) == len(latencies) else float("inf")
    print(f"target p95 < 2 s: {'met' if p95 < 2 else 'MISSED'}")
    print(
        f"worker throughput: {backlog:,} queued events drained in {drain_seconds:.1f} s = "
        f"{backlog / drain_seconds:,.0f} events/s"
    )


if __name__ == "__main__":
    main()
