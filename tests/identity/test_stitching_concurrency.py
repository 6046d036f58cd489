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


@pytest.mark.django_db(transaction=True)
def test_a_merge_does_not_deadlock_with_a_segments_commit_holding_its_contacts_profile_updates(settings):
    import time

    import psycopg

    from identity.models import ProfileUpdate
    from segments.models import Segment, SegmentKind
    from tests.conftest import _test_database_url

    # (no wake-up and no segment refresh: a Celery worker an earlier test in this process started
    # would otherwise claim the ProfileUpdate rows this test stages, and the drain would not wait)
    settings.PROFILE_UPDATE_HOOK = None
    # given two devices' contacts, the first one identified as a user (each has a ProfileUpdate)
    source = Source.objects.create(name="s")
    setup = _store(
        source,
        [
            {"type": "page", "anonymousId": "phone", "properties": {"path": "/"}},
            {"type": "page", "anonymousId": "laptop", "properties": {"path": "/"}},
            {"type": "identify", "anonymousId": "phone", "userId": "u-ada"},
        ],
    )
    with transaction.atomic():
        events_process(event_ids=setup)
    phone = Identity.objects.get(value="phone").contact_id
    laptop = Identity.objects.get(value="laptop").contact_id
    assert set(ProfileUpdate.objects.values_list("contact_id", flat=True)) >= {phone, laptop}
    segment = Segment.objects.create(name="Everyone", kind=SegmentKind.STATIC)
    # and a segments worker mid-transaction: it claimed both rows, deleted one and wrote a
    # membership of that contact (its foreign key checked, KEY SHARE, at its commit)
    segments_worker = psycopg.connect(_test_database_url())
    try:
        segments_worker.execute(
            "SELECT contact_id FROM identity_profileupdate WHERE contact_id = ANY(%s) FOR UPDATE",
            [[phone, laptop]],
        )
        segments_worker.execute(
            "DELETE FROM identity_profileupdate WHERE contact_id = ANY(%s)", [[phone, laptop]]
        )
        segments_worker.execute(
            "INSERT INTO segments_membership (segment_id, contact_id, entered_at) VALUES (%s, %s, now()) "
            "ON CONFLICT DO NOTHING",
            [segment.pk, phone],
        )
        # when the laptop identifies as the same user (the two contacts merge) while it is open
        merge = _store(source, [{"type": "identify", "anonymousId": "laptop", "userId": "u-ada"}])
        errors: list[BaseException] = []

        def drain():
            try:
                with transaction.atomic():
                    events_process(event_ids=merge)
            except BaseException as exc:  # reported below
                errors.append(exc)
            finally:
                connection.close()

        thread = threading.Thread(target=drain)
        thread.start()
        # (the drain waits for the segments worker's rows: Postgres shows it blocked by that backend)
        deadline = time.monotonic() + 20
        blocked = "SELECT count(*) FROM pg_locks WHERE %s = ANY(pg_blocking_pids(pid)) AND granted = false"
        while segments_worker.execute(blocked, [segments_worker.info.backend_pid]).fetchone() == (0,):
            assert thread.is_alive() and time.monotonic() < deadline, "the drain never waited"
            time.sleep(0.01)
        # then the segments worker commits (no deadlock) and so does the drain, after it
        segments_worker.commit()
    finally:
        segments_worker.close()  # a failed wait above must not leave its locks for the flush
    thread.join(timeout=30)
    assert not thread.is_alive() and not errors, errors
    (person,) = Contact.objects.filter(merged_into__isnull=True).values_list("pk", flat=True)
    assert {phone, laptop} >= {person}
    # and the merged people are marked for the segments to see again
    assert person in set(ProfileUpdate.objects.values_list("contact_id", flat=True))
