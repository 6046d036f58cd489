"""Sustained pipeline throughput: ingest -> stitching -> projection/rollups -> realtime segments.

Starts the app (granian, as `make run` does), real Celery workers and beat against a scratch
database and a private Redis, with one realtime segment defined (so the stitching worker's
profile updates are evaluated, as they would be in a workspace that uses segments). Then:

  sustained (default) — sends events through POST /v1/batch at --rate events/s for --minutes,
    and every --sample seconds reads the backlog (queued, unprocessed events) and the segments'
    pending profile updates. It reports the events/s the pipeline processed after the warm-up
    and the backlog's slope (a least-squares fit over the samples): the pipeline holds the rate
    when the slope is flat (|slope| at most 2 % of the rate) and the final backlog is small.
  --drain N — with the workers stopped, N events are accepted through the API; the workers are
    started and the time to empty the queue gives their drain rate alone.

Either way the floor is raw COPY's rows/s into a scratch table shaped like events_event (its
indexes included), measured in the same run, before and after the load: the box is shared, so
the ratio to that floor is the figure to compare, not the absolute events/s. At the end every
accepted event must have exactly one projection row (ContactEvent) and the page/track rollups
must count each once; the script exits 1 when they do not.

    .venv/bin/python bench/pipeline.py                          # 10 min at 3,000 events/s
    .venv/bin/python bench/pipeline.py --minutes 2 --rate 5000
    .venv/bin/python bench/pipeline.py --drain 50000            # the workers' drain rate alone
    .venv/bin/python bench/pipeline.py --drain-processes 2 --concurrency 1   # drains on their own
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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    BIN,
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

BATCH = 100
SENDERS = 4
PATHS = ["/", "/pricing", "/docs", "/blog", "/features", "/signup"]
COPY_ROWS = 100_000


def least_squares_slope(points: list[tuple[float, float]]) -> float:
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / var if var else 0.0


@dataclass
class Sample:
    at: float
    accepted: int
    backlog: int
    profile_updates: int


@dataclass
class Traffic:
    """The events sent: returning people (a pool of `people`, two devices each) and, for
    `new_share` of the events, a visitor never seen before (a new anonymous contact); 5 %
    identify (linking the device to the person's user id and email), 65 % page views, 30 %
    track calls."""

    people: int
    new_share: float
    seed: int
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def batch(self) -> list[dict]:
        now = datetime.now(UTC).isoformat()
        events = []
        for _ in range(BATCH):
            if self.rng.random() < self.new_share:
                person = f"new-{uuid.uuid4().hex[:12]}"
            else:
                person = self.rng.randrange(self.people)
            base = {
                "messageId": uuid.uuid4().hex,
                "anonymousId": f"a-{person}-{self.rng.randrange(2)}",
                "timestamp": now,
            }
            roll = self.rng.random()
            if roll < 0.05:
                events.append(
                    {
                        **base,
                        "type": "identify",
                        "userId": f"u-{person}",
                        "traits": {"email": f"person{person}@pipeline.test", "plan": "pro"},
                    }
                )
            elif roll < 0.70:
                path = self.rng.choice(PATHS)
                events.append({**base, "type": "page", "name": path, "properties": {"path": path}})
            else:
                events.append({**base, "type": "track", "event": "Clicked CTA", "properties": {"n": 1}})
        return events


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.workers: list[subprocess.Popen] = []
        self.lock = threading.Lock()
        self.accepted = 0
        self.refused = 0  # 429 (the backlog guard) and other non-200 answers
        self.errors = 0
        self.latencies: list[float] = []

    # --- processes

    def start(self) -> None:
        self.redis_port = free_port()
        self.redis_dir = ROOT / ".devdata" / "bench-pipeline-redis"
        self.redis = start_redis(self.redis_port, self.redis_dir)
        _, self.db_url = database_urls(self.args.database)
        self.env = scratch_env(self.db_url, self.redis_port)
        fresh_database(self.args.database, self.env)
        self.write_key = seed_source(self.env, "bench-pipeline")
        manage_shell(
            self.env,
            "from segments import services;"
            "services.segment_create(actor=None, name='Pricing viewers', definition={'op': 'and', "
            "'conditions': [{'type': 'page', 'where': [{'property': 'path', 'operator': 'contains', "
            "'value': '/pricing'}]}]})",
        )
        self.port = free_port()
        self.web = start_web(self.env, self.port)
        self.beat = start_celery(self.env, "beat", schedule=self.redis_dir / "beat-schedule")

    def start_workers(self) -> None:
        """`make run`'s worker (every queue, --concurrency processes); with --drain-processes,
        that many identity-only workers beside it and the first one leaves the identity queue
        to them (so a drain never holds the slot realtime segments need)."""
        if not self.args.drain_processes:
            self.workers = [start_celery(self.env, "worker", concurrency=self.args.concurrency)]
            return
        self.workers = [self._worker("rest", "default,ingest,segments", self.args.concurrency)]
        for n in range(self.args.drain_processes):
            self.workers.append(self._worker(f"drain{n}", "identity", 1))

    def _worker(self, name: str, queues: str, concurrency: int) -> subprocess.Popen:
        return subprocess.Popen(
            [str(BIN / "celery"), "-A", "cdp_crm", "worker", "-Q", queues, f"--concurrency={concurrency}"]
            + [f"--hostname={name}@%h", "--loglevel=WARNING", "--without-gossip", "--without-mingle"],
            cwd=ROOT,
            env=self.env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop_workers(self) -> None:
        for proc in self.workers:
            stop(proc)
        self.workers = []

    def shutdown(self) -> None:
        self.stop_workers()
        for proc in (self.web, self.beat, self.redis):
            stop(proc)

    # --- the database

    def sql(self, query: str, params=None):
        import psycopg

        with psycopg.connect(self.db_url, autocommit=True) as conn:
            return conn.execute(query, params).fetchall()

    def backlog(self) -> int:
        return self.sql(
            "SELECT (SELECT count(*) FROM events_ingestqueue WHERE dead_at IS NULL)"
            " + (SELECT coalesce(sum(size), 0) FROM events_ingestbatch)"
        )[0][0]

    def profile_updates(self) -> int:
        return self.sql("SELECT count(*) FROM identity_profileupdate")[0][0]

    def copy_floor(self) -> float:
        """Raw COPY rows/s into a scratch table with events_event's columns and indexes."""
        import psycopg

        now = datetime.now(UTC)
        props = json.dumps({"path": "/pricing"})
        context = json.dumps({"library": {"name": "analytics.js"}, "ip": "203.0.113.9"})
        columns = (
            "source_id, message_id, type, event, anonymous_id, user_id, group_id, previous_id, "
            "properties, traits, context, timestamp, original_timestamp, sent_at, received_at, is_bot"
        )
        source_id = self.sql("SELECT min(id) FROM events_source")[0][0]
        with psycopg.connect(self.db_url) as conn:
            conn.execute("DROP TABLE IF EXISTS bench_copy")
            conn.execute("CREATE TABLE bench_copy (LIKE events_event INCLUDING ALL)")
            conn.commit()
            started = time.perf_counter()
            with conn.cursor().copy(f"COPY bench_copy ({columns}) FROM STDIN") as copy:
                for n in range(COPY_ROWS):
                    copy.write_row(
                        (source_id, uuid.uuid4().hex, "page", "/pricing", f"a-{n}-0", "", "", "",
                         props, "{}", context, now, now, now, now, False)
                    )  # fmt: skip
            conn.commit()
            rate = COPY_ROWS / (time.perf_counter() - started)
            conn.execute("DROP TABLE bench_copy")
            conn.commit()
        return rate

    # --- HTTP

    def _send(self, conn: http.client.HTTPConnection, events: list[dict]) -> int:
        auth = "Basic " + base64.b64encode(f"{self.write_key}:".encode()).decode()
        body = json.dumps({"batch": events, "sentAt": datetime.now(UTC).isoformat()}).encode()
        conn.request("POST", "/v1/batch", body, {"Content-Type": "application/json", "Authorization": auth})
        response = conn.getresponse()
        response.read()
        return response.status

    def sender(self, n: int, stop_at: float, rate: float, total: int | None) -> None:
        """One of SENDERS threads: batches at rate/SENDERS events/s (or as fast as answered up
        to `total` events between all senders). A refused batch is not retried: the figure is
        what the pipeline accepted and processed."""
        traffic = Traffic(
            people=self.args.people, new_share=self.args.new_share, seed=self.args.seed * 100 + n
        )
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        interval = BATCH * SENDERS / rate if rate else 0.0
        due = time.monotonic() + interval * n / SENDERS
        while time.monotonic() < stop_at:
            if total is not None:
                with self.lock:
                    if self.accepted + self.refused * BATCH >= total:
                        return
            if (delay := due - time.monotonic()) > 0:
                time.sleep(delay)
            events = traffic.batch()
            began = time.monotonic()
            try:
                status = self._send(conn, events)
            except (OSError, http.client.HTTPException):
                with self.lock:
                    self.errors += 1
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                continue
            with self.lock:
                self.latencies.append(time.monotonic() - began)
                if status == 200:
                    self.accepted += len(events)
                else:
                    self.refused += 1
            due = max(due + interval, time.monotonic() - 1.0)  # no burst to catch up after a stall

    def send(self, *, seconds: float, rate: float, total: int | None = None) -> list[threading.Thread]:
        stop_at = time.monotonic() + seconds
        threads = [
            threading.Thread(target=self.sender, args=(n, stop_at, rate, total), daemon=True)
            for n in range(SENDERS)
        ]
        for thread in threads:
            thread.start()
        return threads

    # --- the runs

    def sustained(self) -> dict:
        self.start_workers()
        time.sleep(3)
        seconds = self.args.minutes * 60
        started = time.monotonic()
        threads = self.send(seconds=seconds, rate=self.args.rate)
        samples: list[Sample] = []
        while any(t.is_alive() for t in threads):
            time.sleep(self.args.sample)
            with self.lock:
                accepted = self.accepted
            sample = Sample(time.monotonic() - started, accepted, self.backlog(), self.profile_updates())
            samples.append(sample)
            if not self.args.quiet:
                print(
                    f"  t={sample.at:6.0f} s accepted {sample.accepted:>10,} backlog {sample.backlog:>8,}"
                    f" profile updates {sample.profile_updates:>6,}",
                    flush=True,
                )
        sent_for = time.monotonic() - started
        # Past the warm-up (the first --warmup seconds: imports, connections, first contacts).
        steady = [s for s in samples if s.at >= self.args.warmup] or samples
        first, last = steady[0], steady[-1]
        span = max(last.at - first.at, 1e-9)
        processed = (last.accepted - last.backlog) - (first.accepted - first.backlog)
        catch_up = time.monotonic()
        while self.backlog() and time.monotonic() - catch_up < self.args.catch_up:
            time.sleep(0.5)
        return {
            "seconds": sent_for,
            "accepted_rate": (last.accepted - first.accepted) / span,
            "processed_rate": processed / span,
            "slope": least_squares_slope([(s.at, s.backlog) for s in steady]),
            "updates_slope": least_squares_slope([(s.at, s.profile_updates) for s in steady]),
            "backlog_max": max(s.backlog for s in steady),
            "backlog_end": last.backlog,
            "updates_max": max(s.profile_updates for s in steady),
            "catch_up": time.monotonic() - catch_up,
            "samples": len(steady),
        }

    def drain(self) -> dict:
        threads = self.send(seconds=3600, rate=0, total=self.args.drain)
        for thread in threads:
            thread.join()
        backlog = self.backlog()
        self.start_workers()
        # The clock starts at the first claim (not at the workers' start-up) and stops when the
        # queue is empty or after --minutes.
        while (start := self.backlog()) == backlog:
            time.sleep(0.05)
        began = time.monotonic()
        while (left := self.backlog()) and time.monotonic() - began < self.args.minutes * 60:
            time.sleep(0.2)
        seconds = time.monotonic() - began
        return {
            "backlog": backlog,
            "done": start - left,
            "seconds": seconds,
            "rate": (start - left) / seconds,
        }

    def reconcile(self) -> dict:
        """Every accepted event stored once and either projected exactly once or still queued
        (a run the workers did not catch up with); the rollups count each projected page/track
        event once. Read with the workers stopped, so nothing moves meanwhile."""
        self.stop_workers()
        (events, projected, distinct, rollups, countable, backlog), = self.sql(
            """
            SELECT (SELECT count(*) FROM events_event),
                   (SELECT count(*) FROM identity_contactevent),
                   (SELECT count(DISTINCT event_id) FROM identity_contactevent),
                   (SELECT coalesce(sum(count), 0) FROM identity_dailyactivity),
                   (SELECT count(*) FROM identity_contactevent
                    WHERE type IN ('page', 'track') AND NOT is_bot),
                   (SELECT count(*) FROM events_ingestqueue)
                   + (SELECT coalesce(sum(size), 0) FROM events_ingestbatch)
            """
        )  # fmt: skip
        return {
            "accepted": self.accepted,
            "events": events,
            "projected": projected,
            "queued": backlog,
            "duplicates": projected - distinct,
            "rollups": rollups,
            "countable": countable,
        }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10, help="of load (with --drain: at most)")
    parser.add_argument("--rate", type=float, default=3000, help="events/s sent (batches of 100)")
    parser.add_argument("--sample", type=float, default=5, help="seconds between backlog samples")
    parser.add_argument("--warmup", type=float, default=20, help="seconds left out of the fit")
    parser.add_argument("--catch-up", type=float, default=120, help="seconds to wait for the backlog")
    parser.add_argument("--drain", type=int, default=0, help="measure the drain of N pre-filled events")
    parser.add_argument("--concurrency", type=int, default=2, help="processes of the all-queue worker")
    parser.add_argument("--drain-processes", type=int, default=0, help="extra identity-only workers")
    parser.add_argument("--people", type=int, default=10_000, help="returning people (2 devices each)")
    parser.add_argument("--new-share", type=float, default=0.02, help="share of events from new visitors")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database", default="cdp_crm_bench_pipeline")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()

    bench = Bench(args)
    bench.start()
    try:
        floor_before = bench.copy_floor()
        result = bench.drain() if args.drain else bench.sustained()
        check = bench.reconcile()
        floor_after = bench.copy_floor()
    finally:
        bench.shutdown()
    floor = (floor_before + floor_after) / 2
    workers = (
        f"1 worker x {args.concurrency} (default, ingest, segments) + {args.drain_processes} "
        "identity-only x 1"
        if args.drain_processes
        else f"1 worker x {args.concurrency} (all queues)"
    )
    print()
    print(
        f"raw COPY floor: {floor:,.0f} rows/s (before {floor_before:,.0f}, after {floor_after:,.0f}); "
        f"{workers}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    ok = True
    if args.drain:
        print(
            f"drain: {result['done']:,} of {result['backlog']:,} queued events in "
            f"{result['seconds']:.1f} s = "
            f"{result['rate']:,.0f} events/s = {result['rate'] / floor:.3f} of COPY"
        )
    else:
        flat = abs(result["slope"]) <= 0.02 * args.rate and result["backlog_end"] <= args.rate * 30
        ok = flat
        latencies = sorted(bench.latencies) or [float("nan")]
        print(
            f"sustained: sent {args.rate:,.0f} events/s for {result['seconds']:.0f} s "
            f"(accepted {result['accepted_rate']:,.0f}/s, refused batches {bench.refused}, errors "
            f"{bench.errors}, /v1/batch p50 {latencies[len(latencies) // 2] * 1000:.0f} ms p99 "
            f"{latencies[int(len(latencies) * 0.99)] * 1000:.0f} ms)"
        )
        print(
            f"processed {result['processed_rate']:,.0f} events/s = "
            f"{result['processed_rate'] / floor:.3f} of COPY (target 0.15); backlog slope "
            f"{result['slope']:+,.1f} events/s over {result['samples']} samples, max "
            f"{result['backlog_max']:,}, at the end {result['backlog_end']:,} (drained "
            f"{result['catch_up']:.1f} s after the load); profile updates max {result['updates_max']:,}, "
            f"slope {result['updates_slope']:+,.1f}/s: backlog {'FLAT' if flat else 'GROWING'}"
        )
    print(
        f"exactly once: accepted {check['accepted']:,}, stored {check['events']:,}, projected "
        f"{check['projected']:,} (duplicates {check['duplicates']}), still queued {check['queued']:,}, "
        f"rollups {check['rollups']:,} of {check['countable']:,} projected page/track events"
    )
    once = (
        check["events"] == check["accepted"] == check["projected"] + check["queued"]
        and check["duplicates"] == 0
        and check["rollups"] == check["countable"]
    )
    if not once:
        print("RECONCILE FAILED")
    sys.exit(0 if ok and once else 1)


if __name__ == "__main__":
    main()
