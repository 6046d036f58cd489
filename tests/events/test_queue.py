import json
import time
import uuid
from datetime import UTC, datetime

import pytest

from events import services, tasks
from events.ingest import normalise
from events.models import Event, IngestQueue, Source

CALLS: list[list[int]] = []


def recording_processor(*, event_ids):
    CALLS.append(sorted(event_ids))


def poison_processor(*, event_ids):
    poisoned = set(Event.objects.filter(pk__in=event_ids, event="Poison").values_list("pk", flat=True))
    if poisoned:
        raise ValueError(f"cannot process {sorted(poisoned)}")
    CALLS.append(sorted(event_ids))


def _store(source, *names):
    now = datetime.now(UTC)
    messages = [
        normalise(
            {"type": "track", "userId": "u", "event": n, "messageId": uuid.uuid4().hex}, received_at=now
        )
        for n in names
    ]
    services.events_store(source=source, messages=messages, rejections=[], received_at=now)


@pytest.mark.django_db
def test_claimed_events_reach_the_processor_and_leave_the_queue(settings):
    settings.INGEST_PROCESSOR = "tests.events.test_queue.recording_processor"
    CALLS.clear()
    source = Source.objects.create(name="s")
    _store(source, "a", "b", "c")
    assert services.ingest_queue_process(limit=2) == 2
    assert services.ingest_queue_process(limit=2) == 1
    assert services.ingest_queue_process(limit=2) == 0
    assert sorted(i for call in CALLS for i in call) == sorted(Event.objects.values_list("pk", flat=True))
    assert IngestQueue.objects.count() == 0


@pytest.mark.django_db
def test_a_poison_event_is_dead_lettered_and_does_not_block_the_others(settings):
    settings.INGEST_PROCESSOR = "tests.events.test_queue.poison_processor"
    CALLS.clear()
    source = Source.objects.create(name="s")
    _store(source, "ok-1", "Poison", "ok-2")
    for _ in range(services.MAX_ATTEMPTS):
        services.ingest_queue_process(limit=10)
    left = IngestQueue.objects.get()
    assert Event.objects.get(pk=left.event_id).event == "Poison"
    assert left.dead_at is not None and left.attempts == services.MAX_ATTEMPTS
    assert "cannot process" in left.last_error
    assert len([i for call in CALLS for i in call]) == 2
    # dead rows are not claimed again
    assert services.ingest_queue_process(limit=10) == 0


def _wait_until_worker_idle(timeout: float = 15) -> None:
    from cdp_crm.celery import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        active = app.control.inspect(timeout=0.5).active() or {}
        if not any(active.values()):
            return
        time.sleep(0.2)
    raise AssertionError("the worker stayed busy")


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
    while IngestQueue.objects.exists():
        assert time.monotonic() < deadline, celery_worker.output()[-3000:]
        time.sleep(0.1)
    assert Event.objects.count() == 20  # processing never removes events


@pytest.mark.django_db(transaction=True)
def test_the_sweeper_drains_events_whose_wake_up_was_lost(celery_worker, monkeypatch):
    # given an idle worker (an earlier test's drain may still be polling its idle tail)
    _wait_until_worker_idle()
    # and events stored while the broker lost every wake-up message
    monkeypatch.setattr(tasks.ingest_drain, "delay", lambda *a, **k: None)
    source = Source.objects.create(name="s")
    _store(source, "x", "y")
    monkeypatch.undo()
    time.sleep(0.5)
    assert IngestQueue.objects.count() == 2
    # when beat's sweep runs (the same task, sent by the schedule)
    tasks.ingest_drain.apply_async()
    # then the queue empties
    deadline = time.monotonic() + 30
    while IngestQueue.objects.exists():
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
    while IngestQueue.objects.exists():
        assert time.monotonic() < deadline, celery_worker.output()[-3000:]
        time.sleep(0.05)
    assert Event.objects.count() == 3
