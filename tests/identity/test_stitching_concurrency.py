"""Two workers stitching overlapping identities at the same moment (two threads, two database
connections, released together by a barrier)."""

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction

from contacts.models import Contact
from events.ingest.parse import normalise
from events.models import Event, Source
from identity.models import ContactEvent, DailyActivity, Identity
from identity.services.stitching import events_process

ROUNDS = 6


def _store(source, raws) -> list[int]:
    """Events as the API stores them, but with no queue row: only the two threads below may
    stitch them (the session's Celery worker must not)."""
    now = datetime(2026, 11, 3, tzinfo=UTC)
    rows = []
    for n, raw in enumerate(raws):
        raw = {**raw, "messageId": uuid.uuid4().hex, "timestamp": (now + timedelta(seconds=n)).isoformat()}
        m = normalise(raw, received_at=now)
        rows.append(
            Event(
                source=source,
                message_id=m.message_id,
                type=m.type,
                event=m.event,
                anonymous_id=m.anonymous_id,
                user_id=m.user_id,
                properties=m.properties,
                traits=m.traits,
                context=m.context,
                timestamp=m.timestamp,
                received_at=now,
            )
        )
    return [e.pk for e in Event.objects.bulk_create(rows)]


def _run_together(*batches: list[int]) -> list[BaseException]:
    barrier = threading.Barrier(len(batches))
    errors: list[BaseException] = []

    def work(ids):
        try:
            barrier.wait(timeout=10)
            with transaction.atomic():
                events_process(event_ids=ids)
        except BaseException as exc:  # reported by the test below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(ids,)) for ids in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a worker hung (deadlock?)"
    return errors


@pytest.mark.django_db(transaction=True)
def test_overlapping_identities_stitched_concurrently_make_one_person_without_deadlock():
    source = Source.objects.create(name="s")
    for r in range(ROUNDS):
        x, y, user = f"r{r}-x", f"r{r}-y", f"r{r}-user"
        # each worker sees the same two browsers and the same user, in the opposite order
        first = _store(
            source,
            [
                {"type": "page", "anonymousId": x, "properties": {"path": "/1"}},
                {
                    "type": "identify",
                    "anonymousId": x,
                    "userId": user,
                    "traits": {"email": f"{user}@example.com"},
                },
                {"type": "page", "anonymousId": y, "properties": {"path": "/2"}},
            ],
        )
        second = _store(
            source,
            [
                {"type": "page", "anonymousId": y, "properties": {"path": "/3"}},
                {"type": "identify", "anonymousId": y, "userId": user},
                {"type": "page", "anonymousId": x, "properties": {"path": "/4"}},
            ],
        )
        errors = _run_together(first, second)
        assert not errors, errors
        # then exactly one live person holds every identifier and all six events
        owners = set(
            Identity.objects.filter(value__in=[x, y, user, f"{user}@example.com"]).values_list(
                "contact_id", flat=True
            )
        )
        assert len(owners) == 1
        (person,) = owners
        assert Contact.objects.get(pk=person).merged_into_id is None
        assert set(
            ContactEvent.objects.filter(event_id__in=first + second).values_list("contact_id", flat=True)
        ) == {person}
    # and nobody is left over: one live person per round
    assert Contact.objects.filter(merged_into__isnull=True).count() == ROUNDS


@pytest.mark.django_db(transaction=True)
def test_the_same_events_stitched_by_two_processors_at_once_count_once():
    # e.g. rebuild_identity replaying while a live worker drains the same events
    source = Source.objects.create(name="s")
    # (a batch long enough that the second processor reads it before the first one commits)
    pages = [
        {"type": "page", "anonymousId": f"twice-{n % 50}", "properties": {"path": "/"}} for n in range(400)
    ]
    ids = _store(source, [*pages, {"type": "identify", "anonymousId": "twice-0", "userId": "twice-user"}])
    errors = _run_together(ids, ids)
    assert not errors, errors
    assert ContactEvent.objects.filter(event_id__in=ids).count() == len(ids)
    assert sum(DailyActivity.objects.values_list("count", flat=True)) == 400
    assert Contact.objects.count() == 50
