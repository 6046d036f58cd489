"""The partitioned event log: retention dropping a month's partition against deleting the same rows.

Builds a scratch database (DATABASE_URL's server, database cdp_crm_partition_bench unless
--database), fills three past months with --rows events each (generate_series, one source keeping
30 days), each event projected to one of --people contacts (identity_contactevent, partitioned
with the same months), then
- deletes the oldest month the way retention deletes a boundary (5,000-row batches: queue rows
  out, the delete hooks, DELETE) and VACUUMs the partition (the cost a DELETE leaves behind);
- drops the middle month the way retention dropped a month before the projection was
  partitioned: the hooks hear of every event (same batches, a per-id DELETE of the projection),
  then DETACH + DROP;
- drops the newest month the way retention drops one now (retention._retention_drop: the queue
  checked once, the month hook set-based, both tables' partitions detached and dropped);
and prints all three.

    .venv/bin/python bench/partitions.py --rows 1000000
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import database_urls, fresh_database


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000, help="events per month")
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--people", type=int, default=2_000, help="contacts the events project to")
    parser.add_argument("--database", default="cdp_crm_partition_bench")
    args = parser.parse_args()

    _, url = database_urls(args.database)
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_DEBUG": "1"}
    fresh_database(args.database, env)
    os.environ.update(DATABASE_URL=url, DJANGO_DEBUG="1", DJANGO_SETTINGS_MODULE="cdp_crm.settings")
    import django

    django.setup()
    from django.db import connection, transaction
    from django.utils import timezone

    from contacts.models import Contact
    from events.models import Source
    from events.services import partitions, retention

    now = timezone.now()
    web = Source.objects.create(name="web", retention_days=30)
    this_month = partitions.month_start(now)
    older, middle, newer = (partitions.month_add(this_month, m) for m in (-5, -4, -3))
    partitions.event_partitions_ensure(now=older, ahead=2)
    Contact.objects.bulk_create([Contact() for _ in range(args.people)], batch_size=1000)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for start in (older, middle, newer):
            cursor.execute(
                """
                INSERT INTO events_event (source_id, message_id, type, event, anonymous_id, user_id,
                    group_id, previous_id, properties, traits, context, timestamp, received_at, is_bot)
                SELECT %(source)s, 'm' || g || '-' || %(tag)s, 'page', '', 'a' || (g %% 20000), '', '', '',
                       jsonb_build_object('path', '/p' || (g %% 20)), '{}',
                       '{"library": {"name": "analytics.js"}}',
                       %(start)s + (g * interval '27 days' / %(n)s),
                       %(start)s + (g * interval '27 days' / %(n)s), false
                FROM generate_series(1, %(n)s) AS g
                """,
                {"source": web.pk, "start": start, "n": args.rows, "tag": start.month},
            )
        cursor.execute(
            """
            INSERT INTO identity_contactevent
                (event_id, contact_id, type, name, path, timestamp, is_bot, received_at)
            SELECT e.id, c.ids[1 + (e.id % array_length(c.ids, 1))], e.type, e.event,
                   e.properties ->> 'path', e.timestamp, false, e.received_at
            FROM events_event e, (SELECT array_agg(id ORDER BY id) AS ids FROM contacts_contact) c
            """
        )
        cursor.execute("ANALYZE events_event")
        cursor.execute("ANALYZE identity_contactevent")
        cursor.execute(
            "SELECT pg_size_pretty(pg_total_relation_size(%s))", [partitions.partition_name(older)]
        )
        size = cursor.fetchone()[0]
    print(
        f"setup: 3 months x {args.rows:,} events in {time.perf_counter() - started:.1f} s "
        f"({size} per month with its indexes), each projected to one of {args.people:,} people"
    )

    # DELETE: the older month, by retention's batch path (its cutoff is the month's end).
    started = time.perf_counter()
    deleted, batches = 0, 0
    while n := retention._retention_batch(source_id=web.pk, cutoff=middle, limit=args.batch):
        deleted, batches = deleted + n, batches + 1
    delete_s = time.perf_counter() - started
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM {partitions.partition_name(older)}")
    vacuum_s = time.perf_counter() - started
    assert deleted == args.rows, deleted
    print(
        f"DELETE (retention batches of {args.batch}): {deleted:,} events in {delete_s:.2f} s "
        f"({deleted / delete_s:,.0f} events/s, {batches} batches), then VACUUM {vacuum_s:.2f} s"
    )

    # DROP as before: the middle month, the hooks over every id first, then the DDL.
    (partition,) = [p for p in partitions.event_partitions() if p.start == middle]
    started = time.perf_counter()
    after, heard = 0, 0
    while ids := partitions.event_partition_ids(partition=partition, after=after, limit=args.batch):
        with transaction.atomic():
            if retention._queue_may_hold(first=ids[0], last=ids[-1]):
                retention.ingest_batches_forget(event_ids=ids)
            retention.events_delete_hooks(event_ids=ids)
        after, heard = ids[-1], heard + len(ids)
    hooks_s = time.perf_counter() - started
    started = time.perf_counter()
    assert partitions.event_partition_drop(partition=partition)
    drop_s = time.perf_counter() - started
    assert heard == args.rows, heard
    print(
        f"DROP month, per-id hooks (before): {heard:,} events; hooks over its ids {hooks_s:.2f} s, "
        f"DETACH + DROP {drop_s * 1000:.0f} ms; total {hooks_s + drop_s:.2f} s"
    )

    # DROP now: the newest month, both tables' partitions, the month hook set-based.
    (partition,) = [p for p in partitions.event_partitions() if p.start == newer]
    started = time.perf_counter()
    dropped = retention._retention_drop(
        partition=partition, deadline=time.monotonic() + 600, batch_size=args.batch
    )
    month_s = time.perf_counter() - started
    assert dropped == args.rows, dropped
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM identity_contactevent")
        assert cursor.fetchone()[0] == 0
    print(
        f"DROP month, co-partitioned (now): {dropped:,} events + {dropped:,} projections "
        f"in {month_s:.2f} s total ({(hooks_s + drop_s) / month_s:.1f}x faster than before)"
    )
    print(f"drop vs delete: {(delete_s + vacuum_s) / month_s:.1f}x faster than the DELETEs and the VACUUM")
    # And the whole retention run finds nothing more to do on these months.
    assert retention.events_retention_enforce(now=now) == 0


if __name__ == "__main__":
    main()
