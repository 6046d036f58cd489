import json
import time
import uuid

import pytest

from events import services, tasks
from events.models import Event, IngestBatch, IngestQueue, Source
from events.selectors import queued_event_count, queued_event_ids
from events.services import queue
from tests.conftest import _test_database_url
from tests.factories import store_messages

CALLS: list[list[int]] = []


def recording_processor(*, event_ids):
    CALLS.append(sorted(event_ids))


def poison_processor(*, event_ids):
    poisoned = set(Event.objects.filter(pk__in=event_ids, event="Poison").values_list("pk", flat=True))
    if poisoned:
        raise ValueError(f"cannot process {sorted(poisoned)}")
    CALLS.append(sorted(event_ids))


def _store(source, *names):
    store_messages(source, *({"type": "track", "userId": "u", "event": n} for n in names))


@pytest.mark.django_db
def test_claimed_events_reach_the_processor_and_leave_the_queue(settings):
    settings.INGEST_PROCESSOR = "tests.events.test_queue.recording_processor"
    CALLS.clear()
    source = Source.objects.create(name="s")
    _store(source, "a", "b", "c")
    # one queue row for the whole request
    (batch,) = IngestBatch.objects.all()
    ids = list(Event.objects.order_by("pk").values_list("pk", flat=True))
    assert (batch.event_ids, batch.size) == (ids, 3)
    # a claim smaller than the batch takes its oldest events and leaves the rest queued
    assert services.ingest_queue_process(limit=2) == 2
    assert [ids[:2]] == CALLS
    batch.refresh_from_db()
    assert (batch.event_ids, batch.size) == (ids[2:], 1)
    assert services.ingest_queue_process(limit=2) == 1
    assert services.ingest_queue_process(limit=2) == 0
    assert [ids[:2], ids[2:]] == CALLS
    assert queued_event_count() == 0 and not IngestBatch.objects.exists()


@pytest.mark.django_db
def test_a_claim_gathers_many_small_batches_up_to_its_limit_oldest_first(settings):
    settings.INGEST_PROCESSOR = "tests.events.test_queue.recording_processor"
    CALLS.clear()
    source = Source.objects.create(name="s")
    for i in range(30):
        _store(source, f"e{i}")
    _store(source, *[f"big{i}" for i in range(40)])
    ids = list(Event.objects.order_by("pk").values_list("pk", flat=True))
    assert IngestBatch.objects.count() == 31
    # 30 one-event batches and 20 of the big one's 40, then the rest of the big one
    assert services.ingest_queue_process(limit=50) == 50
    assert services.ingest_queue_process(limit=50) == 20
    assert services.ingest_queue_process(limit=50) == 0
    assert [ids[:50], ids[50:]] == CALLS
    assert not IngestBatch.objects.exists()


@pytest.mark.django_db
def test_ids_of_events_deleted_while_queued_are_skipped(settings):
    settings.INGEST_PROCESSOR = "tests.events.test_queue.recording_processor"
    CALLS.clear()
    source = Source.objects.create(name="s")
    _store(source, "a", "b", "c", "d")
    a, b, c, d = Event.objects.order_by("pk")
    # an erasure takes two of them out of the queue with the events
    from events.services.erasure import events_delete

    events_delete(event_ids=[b.pk, d.pk])
    (batch,) = IngestBatch.objects.all()
    assert (batch.event_ids, batch.size) == ([a.pk, c.pk], 2)
    # and a batch whose events are all gone disappears
    events_delete(event_ids=[a.pk, c.pk])
    assert not IngestBatch.objects.exists() and queued_event_ids() == []


@pytest.mark.django_db
def test_a_poison_event_is_dead_lettered_and_does_not_block_the_others(settings):
    settings.INGEST_PROCESSOR = "tests.events.test_queue.poison_processor"
    CALLS.clear()
    source = Source.objects.create(name="s")
    _store(source, "ok-1", "Poison", "ok-2")
    for _ in range(queue.MAX_ATTEMPTS):
        services.ingest_queue_process(limit=10)
    # the failed batch became one queue row per event; the good ones were processed
    assert not IngestBatch.objects.exists()
    left = IngestQueue.objects.get()
    assert Event.objects.get(pk=left.event_id).event == "Poison"
    assert left.dead_at is not None and left.attempts == queue.MAX_ATTEMPTS
    assert "cannot process" in left.last_error
    assert len([i for call in CALLS for i in call]) == 2
    # dead rows are not claimed again
    assert services.ingest_queue_process(limit=10) == 0


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_drains_what_the_api_queued(client, celery_worker):
    source = Source.objects.create(name="Website")
    batch = [
        {"type": "page", "anonymousId": "a1", "messageId": uuid.uuid4().hex, "properties": {"path": f"/p{i}"}}
        for i in range(20)
    ]
    response = client.post(
        "/v1/batch",
        json.dumps({"batch": batch, "writeKey": source.write_key}),
        content_type="application/json",
    )
    assert response.status_code == 200
    assert Event.objects.count() == 20
    deadline = time.monotonic() + 30
    while queued_event_count():
        assert time.monotonic() < deadline, celery_worker.output()[-3000:]
        time.sleep(0.1)
    assert Event.objects.count() == 20  # processing never removes events
    assert not IngestBatch.objects.exists() and not IngestQueue.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_sweeper_drains_events_whose_wake_up_was_lost(celery_worker, paused_worker, monkeypatch):
    # given events stored while the broker lost every wake-up message (the worker, paused, cannot
    # take them in an earlier test's drain either)
    monkeypatch.setattr(tasks.ingest_drain, "delay", lambda *a, **k: None)
    source = Source.objects.create(name="s")
    _store(source, "x", "y")
    monkeypatch.undo()
    assert queued_event_count() == 2
    # when beat's sweep runs (the same task, sent by the schedule)
    paused_worker.resume()
    tasks.ingest_drain.apply_async()
    # then the queue empties
    deadline = time.monotonic() + 30
    while queued_event_count():
        assert time.monotonic() < deadline, celery_worker.output()[-3000:]
        time.sleep(0.1)


def test_the_sweeper_is_scheduled():
    from cdp_crm.celery import app

    assert app.conf.beat_schedule["ingest-sweep"]["task"] == "events.tasks.ingest_drain"
    assert app.conf.beat_schedule["ingest-sweep"]["schedule"] <= 60


@pytest.mark.django_db(transaction=True)
def test_wake_ups_are_coalesced_and_the_drain_tail_catches_what_a_skipped_one_would_have(
    client, celery_worker, monkeypatch
):
    # given a worker woken by a first request
    sent = []
    real_delay = tasks.ingest_drain.delay
    monkeypatch.setattr(tasks.ingest_drain, "delay", lambda: sent.append(1) or real_delay())
    source = Source.objects.create(name="s")

    def post(name):
        message = {"type": "track", "userId": "u", "event": name, "messageId": uuid.uuid4().hex}
        body = json.dumps({**message, "writeKey": source.write_key})
        assert client.post("/v1/track", body, content_type="application/json").status_code == 200

    post("first")
    # when more events follow within the wake-up interval
    post("second")
    post("third")
    # then only one wake-up message was sent, and still every event is processed promptly
    assert len(sent) == 1
    deadline = time.monotonic() + 10
    while queued_event_count():
        assert time.monotonic() < deadline, celery_worker.output()[-3000:]
        time.sleep(0.05)
    assert Event.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_taking_events_out_of_the_queue_waits_for_a_worker_holding_their_batch(paused_worker):
    import threading

    import psycopg
    from django.db import connection

    # given a stored batch that a worker has claimed (its row locked by another transaction)
    source = Source.objects.create(name="s")
    _store(source, "a", "b")
    a, b = Event.objects.order_by("pk")
    worker = psycopg.connect(_test_database_url())
    try:
        worker.execute("SELECT id FROM events_ingestbatch FOR UPDATE")
        # when an erasure takes one of its events out of the queue
        done = threading.Event()

        def forget():
            try:
                services.ingest_batches_forget(event_ids=[a.pk])
                done.set()
            finally:
                connection.close()

        thread = threading.Thread(target=forget)
        thread.start()
        # then it waits until the worker's transaction ends (Postgres shows it blocked by the worker's
        # lock), and only then trims the batch
        deadline = time.monotonic() + 10
        blocked = "SELECT count(DISTINCT pid) FROM pg_locks WHERE %s = ANY(pg_blocking_pids(pid))"
        while worker.execute(blocked, [worker.info.backend_pid]).fetchone() != (1,):
            assert thread.is_alive() and time.monotonic() < deadline, "the erasure did not wait for the lock"
            time.sleep(0.01)
        assert not done.is_set()
    finally:
        worker.rollback()  # a failed wait above must not leave the row lock for the flush
        worker.close()
    thread.join(timeout=10)
    assert done.is_set()
    assert list(IngestBatch.objects.values_list("event_ids", "size")) == [([b.pk], 1)]


def _users_in_two_slices() -> tuple[str, str]:
    """Two user ids an unknown visitor's routing (a hash of the id) puts in different slices."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT u, mod(hashtext(u) & 2147483647, %s) FROM unnest(%s::text[]) AS u",
            [queue.QUEUE_SLICES, [f"user-{n}" for n in range(20)]],
        )
        seen: dict[int, str] = {}
        for user, slice_ in cursor.fetchall():
            seen.setdefault(slice_, user)
    first, second, *_ = seen.values()
    return first, second


@pytest.mark.django_db(transaction=True)
def test_a_statement_is_queued_by_slice_and_a_claim_skips_the_slice_another_claim_holds(
    settings, paused_worker
):
    import psycopg

    settings.INGEST_PROCESSOR = "tests.events.test_queue.recording_processor"
    CALLS.clear()
    # given one request carrying two unknown users' events, which route to different slices
    source = Source.objects.create(name="s")
    alice, bob = _users_in_two_slices()
    events = store_messages(
        source, *({"type": "track", "userId": user, "event": "e"} for user in (alice, bob, alice, bob))
    )
    by_user = {user: [e.pk for e in events if e.user_id == user] for user in (alice, bob)}
    batches = dict(IngestBatch.objects.values_list("slice", "event_ids"))
    assert sorted(batches.values()) == sorted(by_user.values())  # one batch row per slice
    alice_slice = next(s for s, ids in batches.items() if ids == by_user[alice])
    # when another drain's claim holds alice's slice (its transaction-level try-lock)
    other = psycopg.connect(_test_database_url())
    try:
        assert other.execute(
            "SELECT pg_try_advisory_xact_lock(%s, %s)", [queue.SLICE_LOCK_CLASS, alice_slice]
        ).fetchone() == (True,)
        # then a claim takes bob's slice only, however much room it has left
        assert services.ingest_queue_process(limit=10) == 2
        assert [by_user[bob]] == CALLS
        assert services.ingest_queue_process(limit=10) == 0
    finally:
        other.rollback()
        other.close()
    # and once that claim ends, alice's slice is taken
    assert services.ingest_queue_process(limit=10) == 2
    assert [by_user[bob], by_user[alice]] == CALLS
    assert not IngestBatch.objects.exists()


def deadlocking_processor(*, event_ids):
    """Fails like a deadlock (Postgres's sqlstate 40P01) the first time it meets each claim."""
    import psycopg
    from django.db import OperationalError

    CALLS.append(sorted(event_ids))
    if CALLS.count(sorted(event_ids)) == 1:
        raise OperationalError("deadlock detected") from psycopg.errors.DeadlockDetected("deadlock detected")


@pytest.mark.django_db
def test_a_claim_that_meets_a_deadlock_runs_again_whole_not_event_by_event(settings):
    settings.INGEST_PROCESSOR = "tests.events.test_queue.deadlocking_processor"
    CALLS.clear()
    source = Source.objects.create(name="s")
    _store(source, "a", "b", "c")
    ids = list(Event.objects.order_by("pk").values_list("pk", flat=True))
    assert services.ingest_queue_process(limit=10) == 3
    # the whole claim twice (the deadlock, then the run that committed), never one event alone
    assert [ids, ids] == CALLS
    assert queued_event_count() == 0 and not IngestQueue.objects.exists()


def failing_processor(*, event_ids):
    CALLS.append(sorted(event_ids))
    raise ValueError("not transient")


@pytest.mark.django_db
def test_a_claim_failing_otherwise_is_not_run_again_whole(settings):
    settings.INGEST_PROCESSOR = "tests.events.test_queue.failing_processor"
    CALLS.clear()
    source = Source.objects.create(name="s")
    _store(source, "a", "b")
    a, b = Event.objects.order_by("pk").values_list("pk", flat=True)
    services.ingest_queue_process(limit=10)
    assert [[a, b], [a], [b]] == CALLS
    assert sorted(IngestQueue.objects.values_list("event_id", "attempts")) == [(a, 1), (b, 1)]
