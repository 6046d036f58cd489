"""Event retention: how fast events_retention_enforce deletes old events with their projections
and rebuilds the rollups of the days they counted in.

Builds a scratch database (DATABASE_URL's server, database cdp_crm_cons_bench unless
--database) with --events events from --people people over 60 days on two sources, stitched
projections and daily rollups (written in SQL, not through the worker), then runs retention at
30 days on one source and prints events deleted per second, per batch size; and checks that the
rollups equal a recompute from scratch.

    .venv/bin/python bench/retention.py --events 200000 --people 5000
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import database_urls, fresh_database


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--people", type=int, default=5_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--database", default="cdp_crm_cons_bench")
    args = parser.parse_args()

    _, url = database_urls(args.database)
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_DEBUG": "1"}
    fresh_database(args.database, env)
    os.environ.update(DATABASE_URL=url, DJANGO_DEBUG="1", DJANGO_SETTINGS_MODULE="cdp_crm.settings")
    import django

    django.setup()
    from django.db import connection
    from django.utils import timezone

    from contacts.models import Contact
    from events import services
    from events.models import Source
    from identity.models import DailyActivity
    from identity.services.projection import daily_activity_recompute

    web = Source.objects.create(name="web", retention_days=30)
    server = Source.objects.create(name="server")
    Contact.objects.bulk_create(
        [Contact(first_name=f"p{i}", is_identified=False) for i in range(args.people)], batch_size=5000
    )
    now = timezone.now()
    started = time.perf_counter()
    with connection.cursor() as cursor:
        # Events spread evenly over the last 60 days, 3 in 4 from the web source; page views of
        # 20 paths and a track event, each person with events on many days.
        cursor.execute(
            """
            INSERT INTO events_event (source_id, message_id, type, event, anonymous_id, user_id, group_id,
                previous_id, properties, traits, context, timestamp, received_at, is_bot)
            SELECT CASE WHEN g %% 4 = 0 THEN %(server)s ELSE %(web)s END, 'm' || g,
                   CASE WHEN g %% 5 = 0 THEN 'track' ELSE 'page' END,
                   CASE WHEN g %% 5 = 0 THEN 'Signed Up' ELSE '' END,
                   'a' || (g %% %(people)s), '', '', '',
                   jsonb_build_object('path', '/p' || (g %% 20)), '{}', '{}',
                   %(now)s - (g * interval '60 days' / %(n)s),
                   %(now)s - (g * interval '60 days' / %(n)s), false
            FROM generate_series(1, %(n)s) AS g
            """,
            {"server": server.pk, "web": web.pk, "people": args.people, "now": now, "n": args.events},
        )
        cursor.execute(
            """
            INSERT INTO identity_contactevent
                (event_id, contact_id, type, name, path, timestamp, is_bot, received_at)
            SELECT e.id, c.ids[1 + (e.id % array_length(c.ids, 1))], e.type, e.event,
                   CASE WHEN e.type = 'page' THEN e.properties ->> 'path' ELSE '' END, e.timestamp, false,
                   e.received_at
            FROM events_event e, (SELECT array_agg(id ORDER BY id) AS ids FROM contacts_contact) c
            """
        )
    people = list(Contact.objects.values_list("pk", flat=True))
    daily_activity_recompute(contact_ids=people)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
        cursor.execute(
            "SELECT count(*) FROM events_event WHERE source_id = %s AND received_at < %s",
            [web.pk, now - dt.timedelta(days=30)],
        )
        due = cursor.fetchone()[0]
    print(
        f"setup: {args.events} events, {args.people} people, {DailyActivity.objects.count()} rollup rows "
        f"in {time.perf_counter() - started:.1f} s; {due} web events older than 30 days"
    )

    started = time.perf_counter()
    deleted = services.events_retention_enforce(now=now, batch_size=args.batch, budget_seconds=3600)
    seconds = time.perf_counter() - started
    batches = max(1, -(-deleted // args.batch))
    print(
        f"retention: deleted {deleted} events in {seconds:.2f} s = {deleted / seconds:,.0f} events/s "
        f"(batch {args.batch}, {batches} batches, {seconds / batches * 1000:.0f} ms/batch)"
    )
    assert deleted == due, (deleted, due)

    after = set(DailyActivity.objects.values_list("contact_id", "day", "kind", "key", "count"))
    daily_activity_recompute(contact_ids=people)
    rebuilt = set(DailyActivity.objects.values_list("contact_id", "day", "kind", "key", "count"))
    print(f"rollups after retention equal a full recompute: {after == rebuilt} ({len(after)} rows)")


if __name__ == "__main__":
    main()
