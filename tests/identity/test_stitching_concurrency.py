"""Two workers stitching overlapping identities at the same moment (two threads, two database
connections, released together by a barrier)."""

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction

from contacts.models import Contact
from events import services as event_services
from events.ingest import normalise
from events.models import Event, Source
from identity.models import ContactEvent, Identity
from identity.stitching import events_process

ROUNDS = 6


def _store(source, raws) -> list[int]:
    now = datetime(2026, 11, 3, tzinfo=UTC)
    messages = []
    for n, raw in enumerate(raws):
        raw = {**raw, "messageId": uuid.uuid4().hex, "timestamp": (now + timedelta(seconds=n)).isoformat()}
        messages.append(normalise(raw, received_at=now))
    before = set(Event.objects.values_list("pk", flat=True))
    event_services.events_store(source=source, messages=messages, rejections=[], received_at=now)
    return sorted(set(Event.objects.values_list("pk", flat=True)) - before)


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
