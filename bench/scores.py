"""Computed traits (and, later, scores) at 100k contacts and 2M events over 90 days.

    cdp_crm.dev exec --database cdp_crm_traits_bench --redis-db N -- .venv/bin/python bench/scores.py \
        [--reseed] [--runs 5] [--probes 40] [--rate 500] [--explain]

Seeds the database it is given (DATABASE_URL) with bench/segments.py's generate_series seed
(contacts_contact, events_event, identity_contactevent, identity_dailyactivity: what the
stitching worker would have written) plus an anonymous_id identity per contact, then prints:

- the floor: one pass over the projection joined with the events' properties (what any
  recompute must read), and the full recompute of 10 traits (first: every value is new; steady:
  nothing changed), with the ratio to the floor;
- event -> updated trait on the contact through a real Celery worker (stitching, the
  ProfileUpdate drain, the trait refresh) while a load of `--rate` events/s is stored through
  `events_store` (the function behind POST /v1/batch): p50/p95/max of probes, each an "Order
  Completed" for a contact whose `orders` trait is then polled until it counts it;
- the contact list sorted by a trait column (GET /contacts/?sort=-trait_orders, Django test client,
  DEBUG off), p50/p95, beside the same page in its default sort (the floor) and the ratio.
"""

import argparse
import importlib.util
import os
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import setup_django, start_celery, stop  # noqa: E402

ORDER = {"event_type": "track", "event_name": "Order Completed"}
VIEWED = {"event_type": "track", "event_name": "Product Viewed", "property_key": "price"}
PAGE_PATH = {"event_type": "page", "property_key": "path"}
PRICING = [{"property": "path", "operator": "contains", "value": "/pricing"}]
TRAITS = [
    {"key": "orders", "name": "Orders", "kind": "count", **ORDER},
    {"key": "orders_30d", "name": "Orders 30d", "kind": "count", "window_days": 30, **ORDER},
    {"key": "pricing_7d", "name": "Pricing 7d", "kind": "count", "event_type": "page", "conditions": PRICING,
     "window_days": 7},
    {"key": "viewed_value", "name": "Viewed value", "kind": "sum", **VIEWED},
    {"key": "avg_price_30d", "name": "Avg price 30d", "kind": "avg", "window_days": 30, **VIEWED},
    {"key": "max_price", "name": "Max price", "kind": "max", "event_type": "track", "property_key": "price"},
    {"key": "first_page", "name": "First page", "kind": "first", **PAGE_PATH},
    {"key": "last_page", "name": "Last page", "kind": "last", **PAGE_PATH},
    {"key": "top_page", "name": "Top page", "kind": "most_frequent", **PAGE_PATH},
    {"key": "pages_seen", "name": "Pages seen", "kind": "unique_count", **PAGE_PATH},
]  # fmt: skip


def _segments_bench():
    spec = importlib.util.spec_from_file_location("bench_segments", ROOT / "bench" / "segments.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _scalar(sql: str, params=None):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchone()[0]


def seed(*, reseed: bool) -> None:
    from django.core.management import call_command
    from django.db import connection

    from contacts.models import Contact

    call_command("migrate", verbosity=0)
    if Contact.objects.count() >= 100_000 and not reseed:
        return
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE contacts_contact, contacts_company, events_source, events_event, identity_identity, "
            "identity_contactevent, identity_dailyactivity, segments_segment, traits_traitdefinition "
            "RESTART IDENTITY CASCADE"
        )
        for sql in _segments_bench().SEED_SQL:
            cursor.execute(sql)
        # The seed's events carry anonymous_id 'c<contact id>': the identities that resolve them.
        cursor.execute(
            "INSERT INTO identity_identity (kind, value, contact_id, created_at) "
            "SELECT 'anonymous_id', 'c' || id, id, now() FROM contacts_contact"
        )
        cursor.execute("ANALYZE")
    events = _scalar("SELECT count(*) FROM events_event")
    print(f"seeded in {time.perf_counter() - started:.0f} s: {events} events")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def define_traits() -> None:
    from traits.models import TraitDefinition

    TraitDefinition.objects.all().delete()
    for fields in TRAITS:
        TraitDefinition.objects.create(**fields)


def bench_recompute(runs: int, explain: bool) -> None:
    from traits import services
    from traits.models import TraitValue

    started = time.perf_counter()
    _scalar(
        "SELECT count(*) FILTER (WHERE e.properties ->> 'path' LIKE '%%pricing%%') "
        "+ sum(length(e.properties ->> 'price')) FROM identity_contactevent ce "
        "JOIN contacts_contact c ON c.id = ce.contact_id AND c.merged_into_id IS NULL "
        "JOIN events_event e ON e.id = ce.event_id AND e.received_at = ce.received_at WHERE NOT ce.is_bot"
    )
    floor = time.perf_counter() - started
    started = time.perf_counter()
    changed = services.traits_recompute()
    first = time.perf_counter() - started
    steady = []
    for _ in range(runs):
        started = time.perf_counter()
        assert services.traits_recompute() == set()
        steady.append(time.perf_counter() - started)
    print(f"floor           one pass over projection + properties        {ms(floor):>8}")
    print(
        f"full recompute  10 traits, first ({len(changed):,} contacts, "
        f"{TraitValue.objects.count():,} values) "
        f"{ms(first):>8}  x{first / floor:.1f} floor"
    )
    print(
        f"full recompute  10 traits, steady median {ms(statistics.median(steady)):>8} "
        f"max {ms(max(steady)):>8}  "
        f"x{statistics.median(steady) / floor:.1f} floor"
    )
    if explain:
        from traits.services import computing

        sql, params = computing._write_statement(computing.contact_traits_defined(), scope=None, now=_now())
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            print("\n".join(row[0] for row in cursor.fetchall()))
        raise SystemExit(0)


def _now():
    from django.utils import timezone

    return timezone.now()


def bench_realtime(probes: int, rate: int) -> None:
    """Event -> trait through a real worker under `rate` events/s of other traffic."""
    import random

    from django.db import close_old_connections

    from events import services as event_services
    from events.ingest.parse import normalise
    from events.models import Source
    from identity.models import ProfileUpdate
    from traits.models import TraitDefinition, TraitValue

    source = Source.objects.first()
    orders = TraitDefinition.objects.get(key="orders")
    ProfileUpdate.objects.all().delete()
    env = dict(os.environ)
    worker = start_celery(env, "worker", concurrency=2)
    stop_load = threading.Event()
    sent = [0]

    def store(messages):
        from datetime import UTC, datetime

        now = datetime.now(UTC)
        normalised = [normalise({"messageId": uuid.uuid4().hex, **m}, received_at=now) for m in messages]
        event_services.events_store(source=source, messages=normalised, rejections=[], received_at=now)

    def load():
        batch = max(1, rate // 10)
        rng = random.Random(7)
        next_at = time.monotonic()
        while not stop_load.is_set():
            messages = []
            for _ in range(batch):
                contact = 1 + int(100_000 * rng.random() ** 2)
                if rng.random() < 0.75:
                    messages.append(
                        {"type": "page", "anonymousId": f"c{contact}", "properties": {"path": "/pricing"}}
                    )
                else:
                    messages.append({"type": "track", "anonymousId": f"c{contact}", "event": "Product Viewed",
                                     "properties": {"price": rng.randint(1, 99)}})  # fmt: skip
            store(messages)
            sent[0] += len(messages)
            next_at += 0.1
            time.sleep(max(0.0, next_at - time.monotonic()))
        close_old_connections()

    thread = threading.Thread(target=load, daemon=True)
    try:
        time.sleep(3)  # the worker starts
        thread.start()
        time.sleep(3)  # the load reaches its pace
        rng = random.Random(11)
        latencies = []
        started_load = time.monotonic()
        sent_before = sent[0]
        for _ in range(probes):
            contact = 1 + int(100_000 * rng.random() ** 2)  # the busy contacts the load touches too
            row = (
                TraitValue.objects.filter(trait=orders, contact_id=contact)
                .values_list("number", flat=True)
                .first()
            )
            before = row or 0
            store([{"type": "track", "anonymousId": f"c{contact}", "event": "Order Completed"}])
            committed = time.perf_counter()
            deadline = committed + 30
            while True:
                now = (
                    TraitValue.objects.filter(trait=orders, contact_id=contact)
                    .values_list("number", flat=True)
                    .first()
                )
                if (now or 0) > before:
                    latencies.append(time.perf_counter() - committed)
                    break
                if time.perf_counter() > deadline:
                    latencies.append(float("inf"))
                    break
                time.sleep(0.02)
            time.sleep(0.2)
        achieved = (sent[0] - sent_before) / (time.monotonic() - started_load)
        print(
            f"realtime        event -> trait, real worker, {achieved:.0f} events/s of load: "
            f"p50 {ms(pct(latencies, 0.5)):>7} p95 {ms(pct(latencies, 0.95)):>7} max {ms(max(latencies)):>7} "
            f"({probes} probes)"
        )
    finally:
        stop_load.set()
        thread.join(timeout=10)
        stop(worker)


def bench_list(runs: int) -> None:
    from django.test import Client

    from accounts import services as accounts
    from accounts.models import Role
    from contacts import services as contact_services

    user = accounts.user_create(username=f"bench-rep-{time.time_ns()}", password=None, role=Role.SALES)
    contact_services.list_columns_set(
        user=user,
        entity="contact",
        columns=["name", "email", "company", "trait_orders", "trait_last_page", "created"],
    )
    client = Client()
    client.force_login(user)
    results = {}
    for label, url in (
        ("default sort (floor)", "/contacts/"),
        ("sorted by trait desc", "/contacts/?sort=-trait_orders"),
        ("sorted by trait asc", "/contacts/?sort=trait_orders"),
        ("trait filter >= 3", "/contacts/?col_trait_orders=%3E%3D3&sort=-trait_orders"),
    ):
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            response = client.get(url)
            times.append(time.perf_counter() - started)
            assert response.status_code == 200
        results[label] = times
        floor = pct(results["default sort (floor)"], 0.5)
        print(
            f"contact list    {label:<24} p50 {ms(pct(times, 0.5)):>7} p95 {ms(pct(times, 0.95)):>7}  "
            f"x{pct(times, 0.5) / floor:.1f} floor"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--probes", type=int, default=40)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--skip-realtime", action="store_true")
    parser.add_argument("--only-realtime", action="store_true")
    parser.add_argument("--only-list", action="store_true", help="the contact list figures alone")
    args = parser.parse_args()
    setup_django()
    seed(reseed=args.reseed)
    if args.only_realtime:
        from traits import services
        from traits.models import TraitValue

        if not TraitValue.objects.exists():
            services.traits_recompute()  # the values the probes start from
        bench_realtime(args.probes, args.rate)
        return
    define_traits()
    if args.only_list:
        from traits import services
        from traits.models import TraitValue

        if not TraitValue.objects.exists():
            services.traits_recompute()
        bench_list(max(args.runs * 4, 20))
        return
    bench_recompute(args.runs, args.explain)
    bench_list(max(args.runs * 4, 20))
    if not args.skip_realtime:
        bench_realtime(args.probes, args.rate)


if __name__ == "__main__":
    main()
