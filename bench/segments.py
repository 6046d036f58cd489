"""Segment engine figures at 100k contacts and 2M events over 90 days.

    .venv/bin/python bench/segments.py [--database NAME] [--reseed] [--runs 5] [--explain]

Seeds a separate database (default `cdp_crm_segments_bench`) with generate_series straight into
contacts_contact, events_event, identity_contactevent and identity_dailyactivity (what the
stitching worker would have written; ~1 min), then prints:

- full recompute of "pricing-curious, never bought" and of a 5-condition segment: the first
  compute (every member enters) and steady-state recomputes (no change), median and max;
- preview latency through POST /api/v1/segments/preview/ (Django test client, DEBUG off);
- realtime update latency: from the commit of a contact's new activity (its events, rollups and
  ProfileUpdate row, as the stitching worker writes them) to the commit of the membership change,
  processed by `profile_updates_process` in batches of 1 and of 100 contacts. The Celery hop
  (wake-up message -> worker) is not included; it is a few milliseconds on an idle worker;
- the same through a real Celery worker, and from a rep's CRM edit (a tag added through
  contacts.services.contact_update) to the membership.
"""

import argparse
import contextlib
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import setup_django  # noqa: E402

CONTACTS = 100_000
EVENTS = 2_000_000
DAYS = 90

PRICING = {
    "op": "and",
    "conditions": [
        {
            "type": "page",
            "where": [{"property": "path", "operator": "contains", "value": "/pricing"}],
            "count": {"operator": "gte", "value": 3},
            "within_days": 7,
        },
        {"type": "event", "name": "Order Completed", "count": {"operator": "eq", "value": 0}},
    ],
}
FIVE = {
    "op": "and",
    "conditions": [
        {
            "type": "page",
            "where": [{"property": "path", "operator": "starts_with", "value": "/pricing"}],
            "count": {"operator": "gte", "value": 2},
            "within_days": 30,
        },
        {
            "type": "event",
            "name": "Product Viewed",
            "where": [{"property": "price", "operator": "gt", "value": 50}],
            "within_days": 14,
        },
        {"type": "trait", "trait": "plan", "operator": "in", "value": ["pro", "business"]},
        {"type": "tag", "operator": "not_has", "value": "churn-risk"},
        {"type": "event", "name": "Order Completed", "count": {"operator": "eq", "value": 0}},
    ],
}

SEED_SQL = [
    "SELECT setseed(0.42)",
    # Contacts: 95 % identified; traits carry a plan; a few tags.
    f"""
    INSERT INTO contacts_contact (first_name, last_name, email, phone, title, lifecycle_stage, tags,
        custom_fields, traits, first_seen, last_seen, attribution, is_identified, created_at, updated_at,
        consent)
    SELECT 'First' || g, 'Last' || g,
        CASE WHEN g % 20 <> 0 THEN 'person' || g || '@co' || (g % 5000) || '.example' END,
        '', '', 'lead',
        CASE WHEN g % 7 = 0 THEN ARRAY['churn-risk'] WHEN g % 11 = 0 THEN ARRAY['vip']
             ELSE ARRAY[]::varchar[] END,
        '{{}}'::jsonb,
        jsonb_build_object('plan', (ARRAY['free', 'free', 'pro', 'business', 'trial'])[1 + g % 5],
                           'seats', g % 40),
        now() - interval '200 days', now() - (g % 90) * interval '1 day', '{{}}'::jsonb, g % 20 <> 0,
        now() - interval '200 days', now(), '{{}}'::jsonb
    FROM generate_series(1, {CONTACTS}) g
    """,
    "INSERT INTO events_source (name, kind, write_key, enabled, allowed_origins, created_at, "
    "require_consent, honor_gpc) VALUES ('Bench', 'web', 'bench-write-key', true, '{}', now(), false, false)",
    # Events: skewed towards a minority of busy contacts (random()^2), 75 % page views; the contact
    # goes into anonymous_id so the projection below can find it without a join table.
    f"""
    INSERT INTO events_event (source_id, message_id, type, event, anonymous_id, user_id, group_id,
        previous_id, properties, traits, context, timestamp, received_at, is_bot)
    SELECT (SELECT id FROM events_source LIMIT 1), 'bench-' || g, t.type, t.name, 'c' || t.contact,
        '', '', '', t.props, '{{}}'::jsonb, '{{}}'::jsonb, t.ts, t.ts, random() < 0.02
    FROM generate_series(1, {EVENTS}) g,
    LATERAL (
        SELECT 1 + floor({CONTACTS} * power(random(), 2))::int AS contact,
               now() - random() * interval '{DAYS} days' AS ts,
               r, p
        FROM (SELECT random() AS r, random() AS p, g AS _g) x
    ) base,
    LATERAL (
        SELECT CASE WHEN base.r < 0.75 THEN 'page' ELSE 'track' END AS type,
            CASE WHEN base.r < 0.75 THEN ''
                 WHEN base.r < 0.76 THEN 'Order Completed'
                 WHEN base.r < 0.80 THEN 'Signed Up'
                 WHEN base.r < 0.92 THEN 'Product Viewed'
                 ELSE 'Login' END AS name,
            CASE WHEN base.r < 0.75 THEN jsonb_build_object('path',
                    (ARRAY['/', '/docs', '/blog/segments', '/features', '/pricing', '/pricing/teams',
                           '/signup', '/docs/api', '/about', '/blog/cdp'])[1 + floor(base.p * 10)::int])
                 ELSE jsonb_build_object('price', floor(base.p * 100)::int) END AS props,
            base.contact, base.ts
    ) t
    """,
    """
    INSERT INTO identity_contactevent (event_id, contact_id, type, name, path, timestamp, is_bot, received_at)
    SELECT e.id, substr(e.anonymous_id, 2)::bigint, e.type, e.event, COALESCE(e.properties->>'path', ''),
        e.timestamp, e.is_bot, e.received_at
    FROM events_event e
    """,
    """
    INSERT INTO identity_dailyactivity (contact_id, day, kind, key, count)
    SELECT contact_id, (timestamp AT TIME ZONE 'UTC')::date,
        CASE type WHEN 'track' THEN 'event' ELSE type END,
        CASE type WHEN 'track' THEN name ELSE path END, count(*)
    FROM identity_contactevent WHERE NOT is_bot
    GROUP BY 1, 2, 3, 4
    """,
    "ANALYZE",
]


def seed(*, reseed: bool) -> None:
    from django.core.management import call_command
    from django.db import connection

    from contacts.models import Contact

    call_command("migrate", verbosity=0)
    if Contact.objects.count() >= CONTACTS and not reseed:
        return
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE contacts_contact, contacts_company, events_source, events_event, "
            "identity_contactevent, identity_dailyactivity, segments_segment RESTART IDENTITY CASCADE"
        )
        for sql in SEED_SQL:
            cursor.execute(sql)
    counts = {
        table: _scalar(f"SELECT count(*) FROM {table}")
        for table in ("contacts_contact", "events_event", "identity_dailyactivity")
    }
    print(f"seeded in {time.perf_counter() - started:.0f} s: {counts}")


def _scalar(sql: str, params=None):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchone()[0]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def bench_full(name: str, definition: dict, runs: int, explain: bool) -> None:
    from segments import services
    from segments.definition import compiler
    from segments.models import Segment

    Segment.objects.filter(name=name).delete()
    segment = services.segment_create(actor=None, name=name, definition=definition)
    started = time.perf_counter()
    segment = services.segment_refresh(segment=segment)
    first = time.perf_counter() - started
    assert not segment.error_count, segment.last_error
    steady = []
    for _ in range(runs):
        started = time.perf_counter()
        services.segment_refresh(segment=segment)
        steady.append(time.perf_counter() - started)
    print(
        f"full recompute  {name:<34} members {segment.member_count:>6}  first {ms(first):>7}  "
        f"steady median {ms(statistics.median(steady)):>7} max {ms(max(steady)):>7}"
    )
    if explain:
        import datetime as dt

        from django.utils import timezone

        ctx = compiler.Context(today=timezone.now().astimezone(dt.UTC).date())
        print(compiler.matching_contacts(compiler.parse(definition), ctx).values("pk").explain(analyze=True))


def bench_preview(runs: int) -> None:
    from django.test import Client

    from accounts import services as accounts
    from accounts.models import Role

    user = accounts.user_create(
        username=f"bench-marketer-{time.time_ns()}", password=None, role=Role.MARKETING
    )
    client = Client()
    client.force_login(user)
    for name, definition in (("pricing", PRICING), ("5-condition", FIVE)):
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            response = client.post(
                "/api/v1/segments/preview/", {"definition": definition}, content_type="application/json"
            )
            times.append(time.perf_counter() - started)
            assert response.status_code == 200, response.content
        count = response.json()["count"]
        print(
            f"preview (API)   {name:<34} count {count:>8}  p50 {ms(pct(times, 0.5)):>7}  "
            f"p95 {ms(pct(times, 0.95)):>7}"
        )


def write_pricing_views(ids: list[int]) -> None:
    """What the stitching worker commits for three /pricing views per contact: events, their
    projection, the rollups and the ProfileUpdate rows."""
    import datetime as dt

    from django.db import connection, transaction
    from django.utils import timezone

    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        # What the stitching worker writes for three pricing views per contact.
        cursor.execute(
            """
            WITH ev AS (
                INSERT INTO events_event (source_id, message_id, type, event, anonymous_id, user_id,
                    group_id, previous_id, properties, traits, context, timestamp, received_at, is_bot)
                SELECT (SELECT id FROM events_source LIMIT 1), 'rt-' || c || '-' || n || '-' || %s,
                    'page', '', 'c' || c, '', '', '', '{"path": "/pricing"}', '{}', '{}', %s, %s, false
                FROM unnest(%s::bigint[]) c, generate_series(1, 3) n
                RETURNING id, anonymous_id, timestamp, received_at
            )
            INSERT INTO identity_contactevent
                (event_id, contact_id, type, name, path, timestamp, is_bot, received_at)
            SELECT id, substr(anonymous_id, 2)::bigint, 'page', '', '/pricing', timestamp, false, received_at
            FROM ev
            """,
            [f"{time.time_ns()}", now, now, ids],
        )
        cursor.execute(
            """
            INSERT INTO identity_dailyactivity (contact_id, day, kind, key, count)
            SELECT c, %s, 'page', '/pricing', 3 FROM unnest(%s::bigint[]) c
            ON CONFLICT (contact_id, day, kind, key) DO UPDATE
                SET count = identity_dailyactivity.count + 3
            """,
            [now.astimezone(dt.UTC).date(), ids],
        )
        cursor.execute(
            """
            INSERT INTO identity_profileupdate (contact_id, updated_at, first_changed_at)
            SELECT c, %s, %s FROM unnest(%s::bigint[]) c
            ON CONFLICT (contact_id) DO UPDATE SET updated_at = EXCLUDED.updated_at
            """,
            [now, now, ids],
        )


def bench_realtime(batch: int, rounds: int) -> None:
    """New pricing-page views for `batch` contacts per round, then the realtime pass."""
    from segments import services
    from segments.models import Segment

    latencies = []
    moved = 0
    pricing = Segment.objects.get(name="pricing-curious, never bought")
    # Contacts with average activity that are not members yet (fresh on every run).
    pool = _fresh_contacts(pricing, batch * rounds)
    for r in range(rounds):
        ids = pool[r * batch : (r + 1) * batch]
        before = pricing.memberships.filter(contact_id__in=ids, exited_at__isnull=True).count()
        write_pricing_views(ids)
        committed = time.perf_counter()
        while services.profile_updates_process(limit=max(batch, 1)):
            pass
        latencies.append(time.perf_counter() - committed)
        moved += pricing.memberships.filter(contact_id__in=ids, exited_at__isnull=True).count() - before
    print(
        f"realtime        batch of {batch:<3} contacts ({rounds} rounds)      entered {moved:>5}  "
        f"p50 {ms(pct(latencies, 0.5)):>7}  p95 {ms(pct(latencies, 0.95)):>7}  max {ms(max(latencies)):>7}"
    )


def _fresh_contacts(pricing, count: int) -> list[int]:
    """Contacts with average activity that are neither members nor buyers (whom three pricing
    views would not bring in)."""
    from identity.models import DailyActivity

    taken = set(pricing.memberships.values_list("contact_id", flat=True))
    taken |= set(
        DailyActivity.objects.filter(kind="event", key="Order Completed").values_list("contact_id", flat=True)
    )
    pool = [c for c in range(40_000, 100_000) if c not in taken and c % 7 != 3]
    start = (time.time_ns() // 1000) % (len(pool) - count)
    return pool[start : start + count]


@contextlib.contextmanager
def _segments_worker():
    """A real Celery worker on the segments queue for the duration."""
    import subprocess

    from cdp_crm.celery import app

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "cdp_crm", "worker", "-Q", "segments", "--concurrency=1"]
        + [
            "--without-gossip",
            "--without-mingle",
            "--loglevel=WARNING",
            "-n",
            f"bench-segments-{os.getpid()}@%h",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not app.control.ping(timeout=0.5):
            assert time.monotonic() < deadline and worker.poll() is None, "the worker did not start"
        yield
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def _until_member(segment, contact_id: int, since: float) -> float:
    from segments.models import Membership

    member = Membership.objects.filter(segment=segment, contact_id=contact_id, exited_at__isnull=True)
    while not member.exists():
        assert time.perf_counter() - since < 30, "no membership after 30 s"
        time.sleep(0.005)
    return time.perf_counter() - since


def bench_realtime_worker(rounds: int) -> None:
    """End to end through Celery: commit the activity, call the PROFILE_UPDATE_HOOK as the
    stitching worker does, poll until the membership row appears (a real worker process)."""
    from django.conf import settings
    from django.db import close_old_connections
    from django.utils.module_loading import import_string

    from segments.models import Segment

    with _segments_worker():
        pricing = Segment.objects.get(name="pricing-curious, never bought")
        hook = import_string(settings.PROFILE_UPDATE_HOOK)
        latencies = []
        for contact_id in _fresh_contacts(pricing, rounds):
            write_pricing_views([contact_id])
            committed = time.perf_counter()
            hook()
            latencies.append(_until_member(pricing, contact_id, committed))
            close_old_connections()
            time.sleep(0.1)  # events arrive spaced out, not back to back
        print(
            f"realtime        via Celery worker, 1 contact ({rounds} rounds)         "
            f"p50 {ms(pct(latencies, 0.5)):>7}  p95 {ms(pct(latencies, 0.95)):>7}  "
            f"max {ms(max(latencies)):>7}"
        )


def bench_crm_edit_worker(rounds: int) -> None:
    """A rep tags a contact (contacts.services.contact_update, as the edit form does) -> after
    commit CONTACT_CHANGE_HOOKS queue it -> the worker re-evaluates its segments; from the
    update's return (committed) to the membership row. The other segments of the run are
    re-evaluated for the contact too, as they would be in production."""
    from django.db import close_old_connections

    from contacts import services as contact_services
    from contacts.models import Contact
    from segments import services

    tag = f"bench-vip-{os.getpid()}"
    segment = services.segment_create(
        actor=None,
        name="tagged by a rep",
        definition={"op": "and", "conditions": [{"type": "tag", "operator": "has", "value": tag}]},
    )
    services.segment_refresh(segment=segment)
    with _segments_worker():
        latencies = []
        pool = list(
            Contact.objects.filter(pk__gte=60_000).order_by("pk").values_list("pk", flat=True)[:rounds]
        )
        for contact in Contact.objects.filter(pk__in=pool).order_by("pk"):
            contact_services.contact_update(contact=contact, actor=None, tags=[*contact.tags, tag])
            latencies.append(_until_member(segment, contact.pk, time.perf_counter()))
            close_old_connections()
            time.sleep(0.1)
        print(
            f"CRM edit        tag added -> member via worker ({rounds} rounds)      "
            f"p50 {ms(pct(latencies, 0.5)):>7}  p95 {ms(pct(latencies, 0.95)):>7}  "
            f"max {ms(max(latencies)):>7}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", default="cdp_crm_segments_bench")
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--explain", action="store_true")
    args = parser.parse_args()
    setup_django(args.database)
    seed(reseed=args.reseed)
    from segments.models import Segment

    Segment.objects.all().delete()
    bench_full("pricing-curious, never bought", PRICING, args.runs, args.explain)
    bench_full("5-condition", FIVE, args.runs, args.explain)
    bench_preview(max(args.runs, 10))
    bench_realtime(1, 40)
    bench_realtime(100, 10)
    bench_realtime_worker(40)
    bench_crm_edit_worker(40)


if __name__ == "__main__":
    main()
