"""Fault soak: events through the real HTTP API while the parts under it fail; then reconcile.

Starts the app (granian, as `make run` does), a Celery worker and beat against a scratch database
and a private Redis (without persistence, as deployed here), sends events with unique messageIds
at a steady rate the way an SDK does (batches, retried with the same messageIds until answered
200), and meanwhile:

  1. kills the Celery worker with SIGKILL (its supervisor starts it again after a few seconds),
  2. restarts Redis: every queued Celery message is gone,
  3. terminates every Postgres connection of the app and the worker.

Then it waits for the work queue to drain and reconciles: every messageId answered 200 must be
stored exactly once, processed exactly once (one ContactEvent row, rollups counted once), and on
the right contact (the people the events describe, as linked by their identify calls). It prints
sent / accepted / stored / duplicates / lost / p99 latency / recovery time per fault and exits 1
when anything was lost, duplicated, unprocessed or misattributed.

    .venv/bin/python bench/soak.py                 # 100,000 events at 1,000/s
    make test-faults                               # the same
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import random
import signal
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
    ROOT,
    database_urls,
    free_port,
    fresh_database,
    scratch_env,
    seed_source,
    start_celery,
    start_redis,
    start_web,
    stop,
)

DEVICES_PER_PERSON = 2


@dataclass
class Batch:
    events: list[dict]
    created: float
    accepted_at: float | None = None
    attempts: int = 0


@dataclass
class Phase:
    name: str
    started: float
    ended: float = 0.0
    recovered_after: float | None = None
    latencies: list[float] = field(default_factory=list)
    errors: int = 0


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.lock = threading.Lock()
        self.batches: list[Batch] = []
        self.latencies: list[tuple[float, float, int]] = []  # (sent at, seconds, status)
        self.stop_sending = threading.Event()
        self.worker: subprocess.Popen | None = None
        self.rng = random.Random(args.seed)

    # --- the processes

    def start(self) -> None:
        self.redis_port = free_port()
        self.redis_dir = ROOT / ".devdata" / "soak-redis"
        self.redis = start_redis(self.redis_port, self.redis_dir)
        _, url = database_urls(self.args.database)
        self.db_url = url
        self.env = scratch_env(url, self.redis_port)
        fresh_database(self.args.database, self.env)
        self.write_key = seed_source(self.env, "soak")
        self.port = free_port()
        self.web = start_web(self.env, self.port)
        self.start_worker()
        self.beat = start_celery(self.env, "beat", schedule=self.redis_dir / "beat-schedule")

    def start_worker(self) -> None:
        self.worker = start_celery(self.env, "worker")

    def shutdown(self) -> None:
        for proc in (self.web, self.worker, self.beat, self.redis):
            stop(proc)

    # --- the faults

    def kill_worker(self) -> None:
        stop(self.worker, signal.SIGKILL)
        time.sleep(self.args.restart_delay)  # the supervisor (systemd, compose) brings it back
        self.start_worker()

    def restart_redis(self) -> None:
        stop(self.redis, signal.SIGKILL)
        self.redis = start_redis(self.redis_port, self.redis_dir)

    def terminate_connections(self) -> None:
        import psycopg

        admin, _ = database_urls(self.args.database)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                [self.args.database],
            )

    # --- the traffic

    def make_event(self, n: int) -> dict:
        person = self.rng.randrange(self.args.people)
        device = self.rng.randrange(DEVICES_PER_PERSON)
        anonymous_id = f"a-{person}-{device}"
        now = datetime.now(UTC).isoformat()
        base = {
            "messageId": f"soak-{n}-{uuid.uuid4().hex[:8]}",
            "anonymousId": anonymous_id,
            "timestamp": now,
        }
        roll = self.rng.random()
        if roll < self.args.identify_share:
            return {
                **base,
                "type": "identify",
                "userId": f"u-{person}",
                "traits": {"email": f"person{person}@soak.test", "plan": self.rng.choice(["free", "pro"])},
            }
        if roll < 0.6:
            path = self.rng.choice(["/", "/pricing", "/docs", "/blog/launch", "/signup"])
            return {**base, "type": "page", "name": path, "properties": {"path": path}}
        return {
            **base,
            "type": "track",
            "event": self.rng.choice(["Signed Up", "Clicked CTA", "Order Completed"]),
        }

    def sender(self, index: int, batches_per_second: float, total_batches: int, start: float) -> None:
        auth = "Basic " + base64.b64encode(f"{self.write_key}:".encode()).decode()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        threads = self.args.senders
        for k in range(index, total_batches, threads):
            due = start + k / batches_per_second
            if (delay := due - time.monotonic()) > 0:
                time.sleep(delay)
            with self.lock:
                batch = Batch(
                    events=[self.make_event(k * self.args.batch + i) for i in range(self.args.batch)],
                    created=time.monotonic(),
                )
                self.batches.append(batch)
            body = json.dumps({"batch": batch.events, "sentAt": datetime.now(UTC).isoformat()}).encode()
            backoff = 0.1
            while batch.accepted_at is None:
                batch.attempts += 1
                sent = time.monotonic()
                try:
                    conn.request(
                        "POST", "/v1/batch", body, {"Content-Type": "application/json", "Authorization": auth}
                    )
                    response = conn.getresponse()
                    response.read()
                    status = response.status
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                    status = 0
                elapsed = time.monotonic() - sent
                with self.lock:
                    self.latencies.append((sent, elapsed, status))
                if status == 200:
                    batch.accepted_at = time.monotonic()
                elif time.monotonic() - batch.created > self.args.give_up:
                    break  # never accepted: not counted as accepted, so not owed
                else:
                    time.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)

    # --- observing

    def queue_depth(self) -> int:
        import psycopg

        for _ in range(20):
            try:
                with psycopg.connect(self.db_url, autocommit=True, connect_timeout=3) as conn:
                    return conn.execute(
                        "SELECT (SELECT count(*) FROM events_ingestqueue WHERE dead_at IS NULL)"
                        " + (SELECT coalesce(sum(size), 0) FROM events_ingestbatch)"
                    ).fetchone()[0]
            except psycopg.OperationalError:
                time.sleep(0.2)
        raise SystemExit("cannot reach the soak database")

    def run(self) -> list[Phase]:
        args = self.args
        total_batches = args.events // args.batch
        batches_per_second = args.rate / args.batch
        duration = total_batches / batches_per_second
        start = time.monotonic()
        threads = [
            threading.Thread(
                target=self.sender, args=(i, batches_per_second, total_batches, start), daemon=True
            )
            for i in range(args.senders)
        ]
        for t in threads:
            t.start()
        faults = [
            ("worker SIGKILL", self.kill_worker),
            ("Redis restart (no persistence)", self.restart_redis),
            ("Postgres connections terminated", self.terminate_connections),
        ]
        phases = [Phase("steady (no fault)", start)]
        baseline_depth = []
        slot = duration / (len(faults) + 1)
        for i, (name, inject) in enumerate(faults, start=1):
            at = start + slot * i
            while time.monotonic() < at:
                baseline_depth.append(self.queue_depth())
                time.sleep(1)
            phases[-1].ended = time.monotonic()
            phase = Phase(name, time.monotonic())
            phases.append(phase)
            normal = max(
                sorted(baseline_depth)[int(len(baseline_depth) * 0.9)] if baseline_depth else 0,
                args.batch * 4,
            )
            print(
                f"[soak] t={phase.started - start:5.1f}s injecting: {name} (normal queue depth <= {normal})"
            )
            inject()
            threading.Thread(target=self.watch_recovery, args=(phase, normal), daemon=True).start()
        for t in threads:
            t.join()
        phases[-1].ended = time.monotonic()
        return phases

    def watch_recovery(self, phase: Phase, normal: int) -> None:
        """Recovered when requests succeed again and the queue is back to its normal depth."""
        time.sleep(0.5)
        deadline = phase.started + 300
        while time.monotonic() < deadline:
            with self.lock:
                recent = [s for at, _, s in self.latencies[-50:] if at > phase.started]
            if recent and recent[-1] == 200 and self.queue_depth() <= normal:
                phase.recovered_after = time.monotonic() - phase.started
                return
            time.sleep(0.25)

    def drain(self) -> float:
        started = time.monotonic()
        while self.queue_depth() > 0:
            if time.monotonic() - started > self.args.drain_timeout:
                break
            time.sleep(1)
        return time.monotonic() - started

    # --- reconciling

    def reconcile(self) -> dict:
        import psycopg

        accepted = {e["messageId"]: e for b in self.batches if b.accepted_at for e in b.events}
        sent = sum(len(b.events) for b in self.batches)
        with psycopg.connect(self.db_url) as conn:
            stored_rows = conn.execute(
                "SELECT message_id, count(*) FROM events_event GROUP BY message_id"
            ).fetchall()
            stored = {m: n for m, n in stored_rows}
            processed = dict(
                conn.execute(
                    "SELECT e.message_id, c.contact_id FROM events_event e "
                    "JOIN identity_contactevent c ON c.event_id = e.id"
                ).fetchall()
            )
            tombstones = dict(
                conn.execute(
                    "SELECT id, merged_into_id FROM contacts_contact WHERE merged_into_id IS NOT NULL"
                ).fetchall()
            )
            rollup_total = conn.execute(
                "SELECT coalesce(sum(count), 0) FROM identity_dailyactivity"
            ).fetchone()[0]
            rollup_events = conn.execute(
                "SELECT count(*) FROM identity_contactevent "
                "WHERE type IN ('page', 'screen', 'track') AND NOT is_bot"
            ).fetchone()[0]
            queued = conn.execute(
                "SELECT (SELECT count(*) FROM events_ingestqueue)"
                " + (SELECT coalesce(sum(size), 0) FROM events_ingestbatch)"
            ).fetchone()[0]
            dead = conn.execute(
                "SELECT count(*) FROM events_ingestqueue WHERE dead_at IS NOT NULL"
            ).fetchone()[0]

        def live(contact_id: int) -> int:
            seen = 0
            while contact_id in tombstones and seen < 100:
                contact_id, seen = tombstones[contact_id], seen + 1
            return contact_id

        # The people the traffic describes: a device joins its person once it sent an identify.
        identified_devices = {e["anonymousId"] for e in accepted.values() if e["type"] == "identify"}

        def person_of(event: dict) -> str:
            anonymous_id = event["anonymousId"]
            return anonymous_id.rsplit("-", 1)[0] if anonymous_id in identified_devices else anonymous_id

        contacts_of_person: dict[str, set[int]] = {}
        unprocessed = 0
        for message_id, event in accepted.items():
            if message_id not in processed:
                unprocessed += 1
                continue
            contacts_of_person.setdefault(person_of(event), set()).add(live(processed[message_id]))
        split_people = sum(1 for c in contacts_of_person.values() if len(c) > 1)
        owners: dict[int, set[str]] = {}
        for person, contacts in contacts_of_person.items():
            for contact in contacts:
                owners.setdefault(contact, set()).add(person)
        shared_contacts = sum(1 for p in owners.values() if len(p) > 1)
        return {
            "sent": sent,
            "accepted": len(accepted),
            "stored": sum(1 for m in accepted if m in stored),
            "duplicates": sum(n - 1 for n in stored.values() if n > 1),
            "lost": sum(1 for m in accepted if m not in stored),
            "unprocessed": unprocessed,
            "queued_left": queued,
            "dead_lettered": dead,
            "people_split": split_people,
            "contacts_shared": shared_contacts,
            "rollup_mismatch": rollup_total - rollup_events,
        }


def p99(values: list[float]) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * 0.99))]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=1000, help="events per second")
    parser.add_argument("--batch", type=int, default=10, help="events per request")
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--people", type=int, default=3000)
    parser.add_argument("--identify-share", type=float, default=0.05)
    parser.add_argument(
        "--restart-delay", type=float, default=3.0, help="seconds before the killed worker is back"
    )
    parser.add_argument(
        "--give-up", type=float, default=120.0, help="seconds a client keeps retrying a batch"
    )
    parser.add_argument("--drain-timeout", type=float, default=600.0)
    parser.add_argument("--database", default="cdp_crm_soak")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    soak = Soak(args)
    soak.start()
    try:
        began = time.monotonic()
        phases = soak.run()
        send_seconds = time.monotonic() - began
        drain_seconds = soak.drain()
        result = soak.reconcile()
    finally:
        soak.shutdown()

    print()
    print(
        f"sent {result['sent']:,} events in {send_seconds:.0f} s ({result['sent'] / send_seconds:,.0f}/s, "
        f"batches of {args.batch}); queue drained {drain_seconds:.0f} s after the last send"
    )
    print(f"{'phase':<34}{'requests':>9}{'failed':>8}{'p99 ms':>9}{'recovery s':>12}")
    for phase in phases:
        window = [
            (elapsed, status) for at, elapsed, status in soak.latencies if phase.started <= at < phase.ended
        ]
        failed = sum(1 for _, status in window if status != 200)
        recovery = (
            "—"
            if phase.name.startswith("steady")
            else (f"{phase.recovered_after:.1f}" if phase.recovered_after is not None else "never")
        )
        print(
            f"{phase.name:<34}{len(window):>9}{failed:>8}"
            f"{p99([elapsed for elapsed, _ in window]) * 1000:>9.0f}{recovery:>12}"
        )
    print()
    for key in (
        "sent",
        "accepted",
        "stored",
        "duplicates",
        "lost",
        "unprocessed",
        "queued_left",
        "dead_lettered",
    ):
        print(f"{key:<16}{result[key]:>10,}")
    print(f"{'people split':<16}{result['people_split']:>10,}  (one person's events on two live contacts)")
    print(f"{'contacts shared':<16}{result['contacts_shared']:>10,}  (two people's events on one contact)")
    print(f"{'rollup mismatch':<16}{result['rollup_mismatch']:>10,}  (rollup counts minus processed events)")
    bad = [
        k
        for k in (
            "duplicates",
            "lost",
            "unprocessed",
            "queued_left",
            "people_split",
            "contacts_shared",
            "rollup_mismatch",
        )
        if result[k]
    ]
    if result["accepted"] < result["sent"]:
        print(
            f"note: {result['sent'] - result['accepted']} events never answered 200 "
            "within --give-up (not owed)"
        )
    print("RESULT:", "PASS" if not bad else f"FAIL ({', '.join(bad)})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
