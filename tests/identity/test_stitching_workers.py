"""Stitching scales across worker processes: two real Celery workers, each consuming a queue of
its own (as two machines would), drain one backlog together. Every event is processed exactly
once (one projection row, counted once in the rollups) and each worker did part of it: claims
skip the rows another worker holds (SKIP LOCKED) and overlapping identifiers wait on the
identifier and contact locks, so the split needs no coordination between the processes."""

import os
import re
import subprocess
import sys
import time

import pytest
from django.db import connection

from contacts.models import Contact
from events.selectors import queued_event_count
from events.tasks import ingest_drain
from identity.models import ContactEvent, DailyActivity
from tests.conftest import ROOT, _test_database_url, stop_process
from tests.factories import identify_payload, page_payload, send, track_payload

pytestmark = pytest.mark.django_db(transaction=True)

PEOPLE = 150
EVENTS_PER_DEVICE = 10  # two devices per person: 3,000 events, six claims of 500
SUCCEEDED = re.compile(r"Task events\.tasks\.ingest_drain\[[^\]]+\] succeeded in [\d.]+s: (\d+)")


def _worker(queue: str, log, ready) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": _test_database_url(),
        "PYTHONUNBUFFERED": "1",
        "CDP_WORKER_READY_FILE": str(ready),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "cdp_crm", "worker", "-Q", queue, "--concurrency=1"]
        + ["--loglevel=INFO", "--without-gossip", "--without-mingle", "-n", f"{queue}@%h"],
        env=env,
        cwd=ROOT,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _drained(log) -> list[int]:
    return [int(n) for n in SUCCEEDED.findall(log.read_text(errors="replace"))]


def test_two_workers_on_separate_queues_share_one_backlog_and_process_each_event_once(
    client, source, paused_worker, tmp_path
):
    # given a backlog of 3,000 events from 150 people with two devices each, every device
    # identifying as its person on its fifth event (so the two devices' contacts merge), stored
    # while no worker runs
    messages = []
    for n in range(EVENTS_PER_DEVICE):
        for person in range(PEOPLE):
            for device in range(2):
                visitor = {"anonymous_id": f"a-{person}-{device}", "at": n}
                if n == 4:
                    messages.append(identify_payload({"plan": "pro"}, user_id=f"u-{person}", **visitor))
                elif n % 2:
                    messages.append(track_payload("Clicked CTA", **visitor))
                else:
                    messages.append(page_payload(f"/p{n}", **visitor))
    for start in range(0, len(messages), 100):
        send(client, source, *messages[start : start + 100])
    assert queued_event_count() == len(messages)

    # when two worker processes, each on a queue of its own, get a drain each at the same time
    queues = ["stitch-a", "stitch-b"]
    logs = {queue: tmp_path / f"{queue}.log" for queue in queues}
    ready = {queue: tmp_path / f"{queue}.ready" for queue in queues}
    workers = [_worker(queue, logs[queue], ready[queue]) for queue in queues]
    try:
        deadline = time.monotonic() + 60
        while not all(path.exists() for path in ready.values()):
            assert all(w.poll() is None for w in workers), [p.read_text() for p in logs.values()]
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.02)
        for queue in queues:
            ingest_drain.apply_async(queue=queue)
        deadline = time.monotonic() + 240
        while not all(_drained(log) for log in logs.values()):
            assert time.monotonic() < deadline, [log.read_text()[-3000:] for log in logs.values()]
            time.sleep(0.1)
    finally:
        for worker in workers:
            stop_process(worker, sig=15)

    # then the queue is empty and each worker processed part of it, together every event once
    done = {queue: sum(_drained(log)) for queue, log in logs.items()}
    assert queued_event_count() == 0
    assert all(n > 0 for n in done.values()), done
    assert sum(done.values()) == len(messages), done
    assert ContactEvent.objects.count() == len(messages)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(DISTINCT event_id) FROM identity_contactevent")
        assert cursor.fetchone()[0] == len(messages)
    rollups = sum(DailyActivity.objects.values_list("count", flat=True))
    assert rollups == sum(1 for m in messages if m["type"] in ("page", "track"))
    # and each person is one live contact holding both devices' events
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT split_part(e.anonymous_id, '-', 2), count(DISTINCT ce.contact_id), count(*)
            FROM identity_contactevent ce JOIN events_event e ON e.id = ce.event_id
            GROUP BY 1
            """
        )
        people = cursor.fetchall()
    assert len(people) == PEOPLE
    assert {(contacts, events) for _, contacts, events in people} == {(1, 2 * EVENTS_PER_DEVICE)}
    assert Contact.objects.filter(merged_into__isnull=True).count() == PEOPLE
