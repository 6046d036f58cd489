"""Privacy: what the suppression check costs ingestion per message, and how long erasing a person
with a long history takes.

Runs in one process against a scratch database (bench_privacy on DATABASE_URL's server):

  1. `is_suppressed` per message: with an empty suppression list (the usual case), and with
     --hashes suppressed identifiers, for a message that is not suppressed.
  2. erasure: a person with --events events (inserted in bulk, projected onto the contact and
     one tombstone) among --others events of other people; `person_erase` wall time.

    .venv/bin/python bench/privacy.py
    .venv/bin/python bench/privacy.py --events 100000 --others 200000
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, database_urls, fresh_database


def _setup() -> None:
    env = {**os.environ, "DJANGO_DEBUG": "1"}
    url = fresh_database("bench_privacy", {**env, "DATABASE_URL": database_urls("bench_privacy")[1]})
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cdp_crm.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def bench_check(hashes: int) -> None:
    from events.ingest import suppression
    from events.models import Suppression
    from events.services import suppression as suppression_list

    message = {
        "type": "track",
        "anonymousId": "a-visitor-0123456789",
        "userId": "user-42",
        "traits": {"email": "someone@example.com"},
    }
    for label, n in (("empty list", 0), (f"{hashes:,} hashes", hashes)):
        Suppression.objects.all().delete()
        if n:
            suppression_list.suppression_add(values=[f"erased-{i}@example.org" for i in range(n)])
        suppression_list.forget_cache()
        suppression.is_suppressed(message=message)  # load the cache
        rounds = 200_000
        start = time.perf_counter()
        for _ in range(rounds):
            suppression.is_suppressed(message=message)
        per = (time.perf_counter() - start) / rounds * 1e6
        suppression_list.forget_cache()
        start = time.perf_counter()
        suppression.is_suppressed(message=message)
        reload_ms = (time.perf_counter() - start) * 1e3
        print(
            f"is_suppressed, {label}: {per:.2f} µs/message cached;"
            f" cache refresh {reload_ms:.1f} ms (every 5 s)"
        )


def bench_erase(events: int, others: int) -> None:
    from django.db import connection

    from accounts.models import Role
    from accounts.services import user_create
    from contacts.models import Contact
    from events.models import Event, Source
    from identity.models import ContactEvent, Identity
    from privacy import services

    admin = user_create(username="bench-admin", password="x" * 20, role=Role.ADMIN)
    source = Source.objects.create(name="bench")
    person = Contact.objects.create(email="erase.me@example.org", first_name="Erase")
    tomb = Contact.objects.create(first_name="old", is_identified=False, merged_into=person)
    Identity.objects.create(kind="email", value="erase.me@example.org", contact=person)
    Identity.objects.create(kind="anonymous_id", value="anon-erase-me", contact=person)
    other = Contact.objects.create(email="stays@example.org")
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    start = time.perf_counter()
    with connection.cursor() as cursor:
        for anon, n in (("anon-erase-me", events), ("anon-other", others)):
            cursor.execute(
                "INSERT INTO events_event (source_id, message_id, type, event, anonymous_id, user_id,"
                " group_id, previous_id, properties, traits, context, timestamp, received_at, is_bot)"
                " SELECT %s, 'm-' || %s || '-' || g, 'track', 'Viewed', %s, '', '', '', '{}', '{}', '{}',"
                " %s + g * interval '1 second', now(), false FROM generate_series(1, %s) g",
                [source.pk, anon, anon, t0, n],
            )
    for anon, contacts in (("anon-erase-me", [person.pk, tomb.pk]), ("anon-other", [other.pk])):
        ids = Event.objects.filter(anonymous_id=anon).values_list("pk", "received_at")
        ContactEvent.objects.bulk_create(
            [
                ContactEvent(
                    event_id=pk,
                    contact_id=contacts[i % len(contacts)],
                    type="track",
                    name="Viewed",
                    timestamp=t0 + timedelta(seconds=i),
                    received_at=received,
                )
                for i, (pk, received) in enumerate(ids.iterator(chunk_size=5000))
            ],
            batch_size=5000,
        )
    print(f"seeded {events:,} + {others:,} events in {time.perf_counter() - start:.1f} s")
    request = services.person_erase_request(actor=admin, contact=person)
    start = time.perf_counter()
    done = services.person_erase(request_id=request.pk)
    took = time.perf_counter() - start
    print(
        f"person_erase: {done.deleted.get('events.Event', 0):,} events deleted in {took:.2f} s "
        f"({done.deleted.get('events.Event', 0) / took:,.0f} events/s); status {done.status}; "
        f"{Event.objects.count():,} other events left"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hashes", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--others", type=int, default=100_000)
    args = parser.parse_args()
    _setup()
    bench_check(args.hashes)
    bench_erase(args.events, args.others)


if __name__ == "__main__":
    main()
