"""Figures at scale (issue 20): the app on an event log of --events events (20M by default).

Builds a scratch database (DATABASE_URL's server, database cdp_crm_scale_bench unless --database)
by COPY straight into the monthly partitions, with the projection the stitching worker would have
written: one contact per visitor (an anonymous-id identity each), one identity_contactevent row
per event (COPYed into the projection's partitions in the same pass) and the daily rollups
(computed set-based per month from the projection). Events are spread evenly over the 360 days
before the build, in sessions of 8 from one of --events/100 people; 70 % page views (25 paths,
two of them pricing pages), 25 % track events (5 names), 5 % identifies, 1 % bots.

Then measures, each beside a floor from the same run and the ratio:
- ingestion: events_store (the /v1/batch write path: group commit, dedup, queue), 100 events per
  call on one thread, into this table and into an empty database, each beside raw COPY of the
  same number of rows into that database (target: the big table within 20 % of the empty one);
- a 7-day behavioural segment (pricing pages viewed 3+ times in 7 days) fully recomputed
  (segment_refresh; target <= 0.5 s), beside the bare rollup query it compiles to;
- the contact page's timeline (identity.selectors.contact_timeline) p95 over 200 people
  (target < 50 ms), beside the bare projection read by contact;
- person_erase of a person with 50,000 events spread over every month (target <= 10 s), beside
  a raw DELETE of a twin person's 50,000 events and projections;
- retention dropping the oldest month (_retention_drop: both tables' partitions, rollups rebuilt
  set-based; target <= 1 s per 1M events), beside one sequential read of the month's projection;
  then the rollups of the month's people are checked against a recompute from scratch;
- a projection to 200M (see --compare: from two measured sizes, the growth exponent).

    .venv/bin/python bench/scale.py --events 1000000 --json /tmp/scale-1m.json
    .venv/bin/python bench/scale.py --events 20000000 --json /tmp/scale-20m.json --compare /tmp/scale-1m.json

--reuse measures a database an earlier run built (same --events) without building it again (the
measurements change it: events ingested, people added and erased, the oldest month dropped, so
each reuse drops the next month). --only runs some measurements (keeping the others' figures
from --json's file). --drop removes the database at the end; the empty database of the ingest
comparison (<database>_empty) is always dropped.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import database_urls, fresh_database

DAYS = 360
SESSION = 8
PATHS = ["/pricing", "/pricing/enterprise"] + [f"/docs/{i}" for i in range(23)]
TRACKS = ["Product Viewed", "Added to Cart", "Signed Up", "Order Completed", "Video Played"]
CONTEXT = '{"library": {"name": "analytics.js", "version": "4.1.0"}, "ip": "203.0.113.9"}'
ERASED_EVENTS = 50_000
META = "bench_scale_meta"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def _setup(url: str) -> None:
    os.environ.update(DATABASE_URL=url, DJANGO_DEBUG="1", DJANGO_SETTINGS_MODULE="cdp_crm.settings")
    import django

    django.setup()


# --- building


def _person(session: int, people: int) -> int:
    return (session * 2654435761) % people


def _row_texts(g: int, people: int) -> tuple[str, str, int, str, str, str, bool]:
    """(type, event name, person, path, properties, user id, is_bot) of event g."""
    session = g // SESSION
    person = _person(session, people)
    slot = g % 20
    bot = g % 101 == 0
    if slot < 14:
        path = PATHS[(session + (g % SESSION) // 2) % len(PATHS)]
        return "page", "", person, path, f'{{"path": "{path}"}}', "", bot
    if slot < 19:
        name = TRACKS[(session + g) % len(TRACKS)]
        return "track", name, person, "", f'{{"price": {g % 100}}}', "", bot
    return "identify", "", person, "", "{}", f"u{person}", bot


def build(args, url: str) -> dict:
    """Fill the database; returns the build's metadata (kept in META for --reuse)."""
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_DEBUG": "1"}
    started = time.perf_counter()
    fresh_database(args.database, env)
    _setup(url)
    from django.db import connection
    from django.utils import timezone

    from contacts.models import Contact
    from events.models import Source
    from events.services import partitions

    now = timezone.now().replace(microsecond=0)
    first = now - dt.timedelta(days=DAYS)
    n, people = args.events, max(1000, args.events // 100)
    web = Source.objects.create(name="web", kind="web")
    partitions.event_partitions_ensure(now=partitions.month_start(first), ahead=16)
    Contact.objects.bulk_create(
        [Contact(first_name=f"p{i}", is_identified=False) for i in range(people)], batch_size=5000
    )
    contact_ids = sorted(Contact.objects.values_list("pk", flat=True))
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO identity_identity (kind, value, contact_id, created_at)
            SELECT 'anonymous_id', 'a' || (n - 1), c, now()
            FROM unnest(%s::bigint[]) WITH ORDINALITY AS t(c, n)
            """,
            [contact_ids],
        )
    setup_s = time.perf_counter() - started
    print(f"build: migrated, {people:,} contacts and identities in {setup_s:.1f} s", flush=True)

    import psycopg

    span_us = DAYS * 86400 * 1_000_000
    t0 = first.timestamp()
    copied = time.perf_counter()
    with psycopg.connect(url) as events_conn, psycopg.connect(url) as projection_conn:
        g = 0
        month = partitions.month_start(first)
        while g < n:
            end = partitions.month_add(month, 1)
            # The events whose received_at falls in [month, end).
            last = min(n, max(g, math.ceil((end.timestamp() - t0) * 1_000_000 * n / span_us)))
            if last > g:
                _copy_month(events_conn, projection_conn, month, g, last, n, people, t0, web.pk, contact_ids)
                print(
                    f"  {partitions.partition_name(month)}: {last - g:,} events "
                    f"({last:,}/{n:,}, {time.perf_counter() - copied:.0f} s)",
                    flush=True,
                )
            g, month = last, end
        events_conn.execute(
            "SELECT setval('events_event_id_seq', %s)", [n + 1]
        )  # ids 1..n were given by the COPY
        events_conn.commit()
    copy_s = time.perf_counter() - copied

    rolled = time.perf_counter()
    from identity.services import projection

    with connection.cursor() as cursor:
        for partition in partitions.event_partitions():
            cursor.execute(
                projection.ROLLUP_INSERT.format(
                    source=projection.PROJECTION, where="ce.received_at >= %s AND ce.received_at < %s"
                )
                + " ON CONFLICT (contact_id, day, kind, key)"
                " DO UPDATE SET count = identity_dailyactivity.count + EXCLUDED.count",
                [partition.start, partition.end],
            )
        # The dedup window's keys, as ingestion would have left them.
        cursor.execute(
            """
            INSERT INTO events_eventdedup (source_id, message_id, received_at)
            SELECT source_id, message_id, received_at FROM events_event WHERE received_at >= %s
            """,
            [now - dt.timedelta(days=7)],
        )
        cursor.execute(
            "UPDATE contacts_contact c SET first_seen = s.lo, last_seen = s.hi FROM ("
            " SELECT contact_id, min(timestamp) lo, max(timestamp) hi FROM identity_contactevent"
            " GROUP BY contact_id) s WHERE s.contact_id = c.id"
        )
    rollup_s = time.perf_counter() - rolled
    vacuumed = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    vacuum_s = time.perf_counter() - vacuumed
    meta = {
        "events": n,
        "people": people,
        "now": now.isoformat(),
        "source": web.pk,
        "build_seconds": {
            "setup": round(setup_s, 1),
            "copy": round(copy_s, 1),
            "rollups": round(rollup_s, 1),
            "vacuum": round(vacuum_s, 1),
        },
    }
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {META} (meta jsonb)")
        cursor.execute(f"INSERT INTO {META} VALUES (%s::jsonb)", [json.dumps(meta)])
        cursor.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        meta["size"] = cursor.fetchone()[0]
        cursor.execute(f"UPDATE {META} SET meta = %s::jsonb", [json.dumps(meta)])
    print(
        f"build: {n:,} events COPYed with their projections in {copy_s:.0f} s "
        f"({n / copy_s:,.0f} events/s), rollups + dedup + first/last seen {rollup_s:.0f} s, "
        f"VACUUM ANALYZE {vacuum_s:.0f} s; database {meta['size']}",
        flush=True,
    )
    return meta


def _stamp_text(us: int, cache: dict) -> str:
    """An ISO timestamp for microseconds since the epoch (the minute's prefix cached)."""
    minute, rest = divmod(us, 60_000_000)
    prefix = cache.get(minute)
    if prefix is None:
        cache.clear()
        prefix = cache[minute] = dt.datetime.fromtimestamp(minute * 60, dt.UTC).strftime("%Y-%m-%d %H:%M:")
    return f"{prefix}{rest / 1_000_000:09.6f}+00"


def _copy_month(events_conn, projection_conn, month, g, last, n, people, t0, source_id, contact_ids) -> None:
    from events.services import partitions

    table = partitions.partition_name(month)
    ce_table = partitions.copartition_name("identity_contactevent", month)
    span_us = DAYS * 86400 * 1_000_000
    base_us = int(t0 * 1_000_000)
    cache: dict = {}
    columns = (
        "id, source_id, message_id, type, event, anonymous_id, user_id, group_id, previous_id, "
        "properties, traits, context, timestamp, received_at, is_bot"
    )
    ce_columns = "event_id, contact_id, type, name, path, timestamp, is_bot, received_at"
    with (
        events_conn.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
        projection_conn.cursor().copy(f"COPY {ce_table} ({ce_columns}) FROM STDIN") as ce_copy,
    ):
        lines, ce_lines = [], []
        for i in range(g, last):
            received_us = base_us + i * span_us // n
            received = _stamp_text(received_us, cache)
            stamp = _stamp_text(received_us - (i % 7) * 1_000_000, cache)
            kind, name, person, path, props, user_id, bot = _row_texts(i, people)
            flag = "t" if bot else "f"
            lines.append(
                f"{i + 1}\t{source_id}\tm{i}\t{kind}\t{name}\ta{person}\t{user_id}\t\t\t"
                f"{props}\t{{}}\t{CONTEXT}\t{stamp}\t{received}\t{flag}\n"
            )
            ce_lines.append(
                f"{i + 1}\t{contact_ids[person]}\t{kind}\t{name}\t{path}\t{stamp}\t{flag}\t{received}\n"
            )
            if len(lines) >= 20_000:
                copy.write("".join(lines))
                ce_copy.write("".join(ce_lines))
                lines, ce_lines = [], []
        if lines:
            copy.write("".join(lines))
            ce_copy.write("".join(ce_lines))
    events_conn.commit()
    projection_conn.commit()


# --- measuring

PRICING_7D = {
    "op": "and",
    "conditions": [
        {
            "type": "page",
            "where": [{"property": "path", "operator": "starts_with", "value": "/pricing"}],
            "count": {"operator": "gte", "value": 3},
            "within_days": 7,
        }
    ],
}


def probe_ingest(events: int) -> dict:
    """In this process's database: raw COPY of `events` rows into events_event, then events_store
    of as many (100 per call, one thread), twice each; the better of each pair."""
    import psycopg
    from django.db import connection
    from django.utils import timezone

    from events import services
    from events.ingest import parse
    from events.models import Source

    source, _ = Source.objects.get_or_create(name="probe", defaults={"kind": "server"})
    url = os.environ["DATABASE_URL"]
    columns = (
        "source_id, message_id, type, event, anonymous_id, user_id, group_id, previous_id, properties, "
        "traits, context, timestamp, received_at, is_bot"
    )
    props = '{"price": 42, "currency": "EUR"}'
    copy_rates, ingest_rates = [], []
    for _ in range(2):
        now = timezone.now()
        with psycopg.connect(url) as conn:
            started = time.perf_counter()
            with conn.cursor().copy(f"COPY events_event ({columns}) FROM STDIN") as copy:
                for n in range(events):
                    copy.write_row(
                        (source.pk, uuid.uuid4().hex, "track", "Product Viewed", f"anon-{n}", "", "", "",
                         props, "{}", CONTEXT, now, now, False)
                    )  # fmt: skip
            conn.commit()
            copy_rates.append(events / (time.perf_counter() - started))
        raw = [
            {
                "type": "track",
                "event": "Product Viewed",
                "anonymousId": f"anon-{n % 5000}",
                "messageId": uuid.uuid4().hex,
                "timestamp": now.isoformat(),
                "properties": {"price": 42, "currency": "EUR"},
                "context": {"library": {"name": "analytics.js", "version": "4.1.0"}, "ip": "203.0.113.9"},
            }
            for n in range(events)
        ]
        connection.close()
        started = time.perf_counter()
        for first in range(0, events, 100):
            received = timezone.now()
            messages = [parse.normalise(m, received_at=received) for m in raw[first : first + 100]]
            services.events_store(source=source, messages=messages, rejections=[], received_at=received)
        ingest_rates.append(events / (time.perf_counter() - started))
    return {"copy_rps": max(copy_rates), "ingest_eps": max(ingest_rates)}


def _probe_in(url: str, events: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--probe-ingest", str(events)],
        env={**os.environ, "DATABASE_URL": url, "DJANGO_DEBUG": "1"},
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def measure_ingest(args, url: str) -> dict:
    empty_name = f"{args.database}_empty"
    _, empty_url = database_urls(empty_name)
    fresh_database(empty_name, {**os.environ, "DATABASE_URL": empty_url, "DJANGO_DEBUG": "1"})
    try:
        # Interleaved, twice each, the better of each kept: the box's load drifts.
        empties, fulls = [], []
        for _ in range(2):
            empties.append(_probe_in(empty_url, args.ingest_events))
            fulls.append(_probe_in(url, args.ingest_events))
        empty = {key: max(p[key] for p in empties) for key in empties[0]}
        full = {key: max(p[key] for p in fulls) for key in fulls[0]}
    finally:
        import psycopg

        admin, _ = database_urls(empty_name)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{empty_name}"')
    result = {
        "empty": empty,
        "full": full,
        "ratio_of_copy_empty": empty["ingest_eps"] / empty["copy_rps"],
        "ratio_of_copy_full": full["ingest_eps"] / full["copy_rps"],
        "full_vs_empty": full["ingest_eps"] / empty["ingest_eps"],
    }
    print(
        f"ingest ({args.ingest_events:,} events, 100 a call): "
        f"empty table {empty['ingest_eps']:,.0f} events/s "
        f"(raw COPY {empty['copy_rps']:,.0f} rows/s, {result['ratio_of_copy_empty']:.2f} of it); "
        f"{args.events:,}-event table {full['ingest_eps']:,.0f} events/s (raw COPY {full['copy_rps']:,.0f}, "
        f"{result['ratio_of_copy_full']:.2f}); full/empty {result['full_vs_empty']:.2f} "
        f"(target >= 0.80)",
        flush=True,
    )
    return result


def measure_segment() -> dict:
    from django.db import connection
    from django.utils import timezone

    from segments import services
    from segments.models import Segment

    Segment.objects.filter(name="scale pricing 7d").delete()
    segment = services.segment_create(actor=None, name="scale pricing 7d", definition=PRICING_7D)
    runs = []
    for _ in range(4):
        started = time.perf_counter()
        segment = services.segment_refresh(segment=segment)
        runs.append(time.perf_counter() - started)
    assert not segment.error_count, segment.last_error
    since = timezone.now().astimezone(dt.UTC).date() - dt.timedelta(days=6)
    floors = []
    for _ in range(4):
        with connection.cursor() as cursor:
            started = time.perf_counter()
            cursor.execute(
                """
                SELECT count(*) FROM (
                    SELECT contact_id FROM identity_dailyactivity
                    WHERE kind = 'page' AND key LIKE '/pricing%%' AND day >= %s
                    GROUP BY contact_id HAVING sum(count) >= 3) m
                """,
                [since],
            )
            bare = cursor.fetchone()[0]
            floors.append(time.perf_counter() - started)
    steady, floor = statistics.median(runs[1:]), statistics.median(floors)
    print(
        f"segment 'pricing 3+ in 7 days' full recompute: first {ms(runs[0])}, steady median {ms(steady)} "
        f"({segment.member_count:,} members; bare rollup query {ms(floor)}, {bare:,} rows: "
        f"{steady / floor:.1f}x) (target <= 500 ms)",
        flush=True,
    )
    return {"first_s": runs[0], "steady_s": steady, "floor_s": floor, "members": segment.member_count}


def _admin():
    from django.contrib.auth import get_user_model

    from accounts.models import Role
    from accounts.services import user_create

    return get_user_model().objects.filter(username="scale-admin").first() or user_create(
        username="scale-admin", password=None, role=Role.ADMIN
    )


def measure_timeline(people: int = 200) -> dict:
    from django.db import connection

    from contacts.models import Contact
    from identity.selectors import contact_timeline

    user = _admin()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM contacts_contact WHERE last_seen IS NOT NULL ORDER BY md5(id::text) LIMIT %s",
            [people],
        )
        ids = [row[0] for row in cursor.fetchall()]
    contacts = list(Contact.objects.filter(pk__in=ids))
    contact_timeline(user=user, contact=contacts[0])  # warm
    times, floors, items = [], [], 0
    for contact in contacts:
        started = time.perf_counter()
        page = contact_timeline(user=user, contact=contact)
        times.append(time.perf_counter() - started)
        items += len(page.items)
        with connection.cursor() as cursor:
            started = time.perf_counter()
            cursor.execute(
                """
                SELECT event_id, timestamp FROM identity_contactevent
                WHERE contact_id = %s AND NOT is_bot AND type NOT IN ('page', 'screen')
                ORDER BY timestamp DESC, event_id DESC LIMIT 21
                """,
                [contact.pk],
            )
            cursor.fetchall()
            floors.append(time.perf_counter() - started)
    result = {"p95_s": p95(times), "median_s": statistics.median(times), "floor_p95_s": p95(floors)}
    print(
        f"timeline (contact_timeline, first page) over {len(contacts)} people: p95 {ms(result['p95_s'])}, "
        f"median {ms(result['median_s'])} ({items / len(contacts):.0f} items a page; bare projection read "
        f"p95 {ms(result['floor_p95_s'])}: {result['p95_s'] / result['floor_p95_s']:.1f}x) (target < 50 ms)",
        flush=True,
    )
    return result


def _person_with_events(tag: str, events: int, source_id: int, now: dt.datetime):
    """A person with `events` events spread over the build's months, projected and rolled up."""
    from django.db import connection

    from contacts.models import Contact
    from identity.models import Identity
    from identity.services import projection

    person = Contact.objects.create(email=f"{tag}@example.org", first_name=tag)
    Identity.objects.create(kind="anonymous_id", value=f"anon-{tag}", contact=person)
    Identity.objects.create(kind="email", value=f"{tag}@example.org", contact=person)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO events_event (source_id, message_id, type, event, anonymous_id, user_id, group_id,
                previous_id, properties, traits, context, timestamp, received_at, is_bot)
            SELECT %(source)s, %(tag)s || '-' || g, 'page', '', %(anon)s, '', '', '',
                   jsonb_build_object('path', '/pricing'), '{}', '{}',
                   %(now)s - g * interval '330 days' / %(n)s, %(now)s - g * interval '330 days' / %(n)s, false
            FROM generate_series(1, %(n)s) g
            """,
            {"source": source_id, "tag": tag, "anon": f"anon-{tag}", "now": now, "n": events},
        )
        cursor.execute(
            """
            INSERT INTO identity_contactevent
                (event_id, contact_id, type, name, path, timestamp, is_bot, received_at)
            SELECT id, %s, type, event, properties ->> 'path', timestamp, false, received_at
            FROM events_event WHERE anonymous_id = %s
            """,
            [person.pk, f"anon-{tag}"],
        )
        cursor.execute(
            projection.ROLLUP_INSERT.format(source=projection.PROJECTION, where="ce.contact_id = %s"),
            [person.pk],
        )
    return person


def measure_erasure(meta: dict) -> dict:
    from django.db import connection
    from django.utils import timezone

    from events.models import Event
    from privacy import services

    now = timezone.now()
    run = int(time.time())
    twin = _person_with_events(f"scale-twin-{run}", ERASED_EVENTS, meta["source"], now)
    person = _person_with_events(f"scale-erase-{run}", ERASED_EVENTS, meta["source"], now)
    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute("DELETE FROM identity_dailyactivity WHERE contact_id = %s", [twin.pk])
        cursor.execute("DELETE FROM identity_contactevent WHERE contact_id = %s", [twin.pk])
        cursor.execute("DELETE FROM events_event WHERE anonymous_id = %s", [f"anon-scale-twin-{run}"])
        floor = time.perf_counter() - started
    twin.delete()
    request = services.person_erase_request(actor=_admin(), contact=person)
    started = time.perf_counter()
    done = services.person_erase(request_id=request.pk)
    seconds = time.perf_counter() - started
    left = Event.objects.filter(anonymous_id=f"anon-scale-erase-{run}").count()
    deleted = done.deleted.get("events.Event", 0)
    assert left == 0 and deleted == ERASED_EVENTS, (left, deleted)
    print(
        f"erasure (person_erase) of a person with {deleted:,} events over 11 months: {seconds:.2f} s "
        f"(raw DELETE of a twin's rows {floor:.2f} s: {seconds / floor:.1f}x) (target <= 10 s)",
        flush=True,
    )
    return {"seconds": seconds, "floor_s": floor, "events": deleted}


def measure_month_drop(meta: dict, *, sample: int = 2000) -> dict:
    from django.db import connection

    from events.services import partitions, retention
    from identity.services import event_months, projection

    part = partitions.event_partitions()[0]
    ce_part = partitions.copartition_name("identity_contactevent", part.start)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {part.name}")
        events = cursor.fetchone()[0]
        cursor.execute(
            f"SELECT pg_total_relation_size('{part.name}') + pg_total_relation_size('{ce_part}'),"
            " pg_total_relation_size(%s)",
            [event_months.rollup_month_partition(start=part.start) or "identity_dailyactivity"],
        )
        size, rollup_size = cursor.fetchone()
        started = time.perf_counter()
        cursor.execute(f"SELECT count(*) FROM (SELECT contact_id, timestamp, type FROM {ce_part}) r")
        cursor.fetchone()
        floor = time.perf_counter() - started
        # The people whose rollups are checked afterwards: a sample of the month's.
        cursor.execute(f"SELECT DISTINCT contact_id FROM {ce_part} ORDER BY contact_id LIMIT %s", [sample])
        people = [row[0] for row in cursor.fetchall()]
    started = time.perf_counter()
    dropped = retention._retention_drop(partition=part, deadline=time.monotonic() + 600, batch_size=5000)
    seconds = time.perf_counter() - started
    assert dropped == events, (dropped, events)
    rollups = (
        "SELECT contact_id, day, kind, key, count FROM identity_dailyactivity WHERE contact_id = ANY(%s)"
    )
    with connection.cursor() as cursor:
        cursor.execute(rollups, [people])
        after = set(cursor.fetchall())
    projection.daily_activity_recompute(contact_ids=people)
    with connection.cursor() as cursor:
        cursor.execute(rollups, [people])
        rebuilt = set(cursor.fetchall())
    per_million = seconds / (events / 1e6)
    print(
        f"month drop ({part.name}: {events:,} events + projections, {size / 2**20:,.0f} MB; rollups' month "
        f"{rollup_size / 2**20:,.0f} MB): {seconds:.2f} s = {per_million:.2f} s per 1M events (one read of "
        f"the month's projection {floor:.2f} s: {seconds / floor:.1f}x) (target <= 1 s per 1M); rollups of "
        f"{len(people):,} of its people equal a recompute: {after == rebuilt} ({len(after):,} rows)",
        flush=True,
    )
    assert after == rebuilt
    return {"seconds": seconds, "events": events, "per_million_s": per_million, "floor_s": floor}


PROJECTED = 200_000_000


def project(figures: dict, other: dict) -> None:
    """Each figure at 200M from its growth between the two measured sizes: t(n) = t1 (n/n1)^k."""
    n1, n2 = other["events"], figures["events"]
    if n1 == n2:
        print("projection: --compare names a run of the same size")
        return
    (small, big) = (other, figures) if n1 < n2 else (figures, other)
    print(f"projection to {PROJECTED:,} events, from {small['events']:,} and {big['events']:,}:")
    for label, path in (
        ("ingest events/s (empty table's ratio)", ("ingest", "full_vs_empty")),
        ("segment recompute s", ("segment", "steady_s")),
        ("timeline p95 s", ("timeline", "p95_s")),
        ("erasure of 50k events s", ("erasure", "seconds")),
        ("month drop s per 1M events", ("month_drop", "per_million_s")),
    ):
        a, b = small[path[0]][path[1]], big[path[0]][path[1]]
        k = math.log(b / a) / math.log(big["events"] / small["events"])
        at = b * (PROJECTED / big["events"]) ** k
        print(f"  {label:<40} {a:10.4f} -> {b:10.4f} (exponent {k:+.2f}) -> {at:10.4f} at 200M")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--database", default="cdp_crm_scale_bench")
    parser.add_argument("--reuse", action="store_true", help="measure a database built by an earlier run")
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--ingest-events", type=int, default=20_000)
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--compare", help="figures of a run at another size (--json): project to 200M")
    parser.add_argument("--drop", action="store_true", help="drop the database at the end")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=["ingest", "segment", "timeline", "erasure", "month_drop"],
        help="these measurements only (the others' figures kept from --json's file, if any)",
    )
    parser.add_argument("--probe-ingest", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.probe_ingest:
        _setup(os.environ["DATABASE_URL"])
        print(json.dumps(probe_ingest(args.probe_ingest)))
        return
    _, url = database_urls(args.database)
    meta = _reused(url, args.events) if args.reuse else None
    if meta is None:
        meta = build(args, url)
    else:
        _setup(url)
        print(f"reusing {args.database}: {meta['events']:,} events, {meta['people']:,} people", flush=True)
    if args.build_only:
        return
    import identity.services.event_months  # noqa: F401  (imported as a worker has it, not timed)

    print(f"load average before: {os.getloadavg()[0]:.1f}", flush=True)
    figures = {"events": meta["events"], "people": meta["people"], "build": meta}
    if args.json and Path(args.json).exists():
        figures = {**json.loads(Path(args.json).read_text()), **figures}
    steps = {
        "ingest": lambda: measure_ingest(args, url),
        "segment": measure_segment,
        "timeline": measure_timeline,
        "erasure": lambda: measure_erasure(meta),
        "month_drop": lambda: measure_month_drop(meta),
    }
    for name in args.only or list(steps):
        figures[name] = steps[name]()
    print(f"load average after: {os.getloadavg()[0]:.1f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, default=str))
    if args.compare:
        project(figures, json.loads(Path(args.compare).read_text()))
    if args.drop:
        import psycopg
        from django.db import connections

        connections.close_all()
        admin, _ = database_urls(args.database)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{args.database}"')


def _reused(url: str, events: int) -> dict | None:
    import psycopg

    try:
        with psycopg.connect(url) as conn:
            row = conn.execute(f"SELECT meta FROM {META}").fetchone()
    except psycopg.Error:
        return None
    if row is None or row[0]["events"] != events:
        return None
    return row[0]


if __name__ == "__main__":
    main()
