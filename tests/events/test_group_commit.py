"""Group commit: concurrent requests of one process share a statement and a commit, and each
still gets exactly its own outcome."""

import threading
import time
import uuid
from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, connection

from events import services
from events.group_commit import GroupCommit, Pending
from events.ingest import normalise
from events.models import Event, EventDedup, RejectedEvent, Source
from events.selectors import queued_event_ids
from tests.conftest import wait_until_the_session_worker_is_idle


def _run_threads(count, target):
    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)


def test_concurrent_submits_are_grouped_and_each_gets_its_own_result():
    # given a writer that takes a while, as a commit does, and records the groups it wrote
    groups = []

    def write(items):
        groups.append([item.payload for item in items])
        time.sleep(0.01)  # the statement's duration: others queue up meanwhile
        for item in items:
            item.result = item.payload * 10

    commit = GroupCommit(write, max_size=1000)
    results = {}
    start = threading.Barrier(16)

    def submit(i):
        start.wait()
        results[i] = commit.submit(i, size=1)

    # when 16 threads submit at once
    _run_threads(16, submit)
    # then every submit got its own result, each payload was written exactly once, in groups
    assert results == {i: i * 10 for i in range(16)}
    assert sorted(p for group in groups for p in group) == list(range(16))
    assert max(len(group) for group in groups) > 1
    assert len(groups) < 16


def test_a_failing_group_raises_in_each_of_its_requests_and_the_next_group_still_runs():
    calls = []

    def write(items):
        calls.append([item.payload for item in items])
        if any(item.payload == "bad" for item in items):
            raise RuntimeError("refused")
        for item in items:
            item.result = "ok"

    commit = GroupCommit(write, max_size=1000)
    with pytest.raises(RuntimeError, match="refused"):
        commit.submit("bad", size=1)
    assert commit.submit("good", size=1) == "ok"
    assert calls == [["bad"], ["good"]]


def test_groups_are_cut_at_the_size_limit():
    sizes = []
    release = threading.Event()

    def write(items):
        sizes.append(sum(item.size for item in items))
        if len(sizes) == 1:
            release.wait(timeout=30)  # the first leader holds while the others queue
        for item in items:
            item.result = True

    commit = GroupCommit(write, max_size=250)
    leader = threading.Thread(target=commit.submit, args=("first",), kwargs={"size": 100})
    leader.start()
    deadline = time.monotonic() + 10
    while not sizes and time.monotonic() < deadline:
        time.sleep(0.001)
    followers = [threading.Thread(target=commit.submit, args=(i,), kwargs={"size": 100}) for i in range(5)]
    for thread in followers:
        thread.start()
    deadline = time.monotonic() + 10
    while len(commit._queue) < 5 and time.monotonic() < deadline:
        time.sleep(0.001)
    release.set()
    for thread in [leader, *followers]:
        thread.join(timeout=30)
    # the five queued requests (500 events) went out as groups of at most 300 (the one crossing 250)
    assert sizes[0] == 100 and sum(sizes[1:]) == 500
    assert all(size <= 300 for size in sizes[1:]) and len(sizes) >= 3


def _messages(ids, received_at):
    return [
        normalise({"type": "track", "event": "E", "userId": "u", "messageId": m}, received_at=received_at)
        for m in ids
    ]


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_overlapping_message_ids_store_each_event_exactly_once(monkeypatch):
    # given no worker draining the queue (no wake-ups; one woken by an earlier test has finished)
    monkeypatch.setattr(services, "_wake_worker", lambda: None)
    wait_until_the_session_worker_is_idle()
    # and two sources and 12 requests that share messageIds across requests and sources
    sources = [Source.objects.create(name="A"), Source.objects.create(name="B")]
    shared = [f"shared-{i}" for i in range(5)]
    now = datetime.now(UTC)
    requests = [(sources[i % 2], [*shared, f"own-{i}-{uuid.uuid4().hex}", f"own-{i}-b"]) for i in range(12)]
    counts = {}
    start = threading.Barrier(12)

    def send(i):
        source, ids = requests[i]
        start.wait()
        try:
            counts[i] = services.events_store(
                source=source, messages=_messages(ids, now), rejections=[], received_at=now
            )
        finally:
            connection.close()

    # when they are stored from 12 threads at once
    _run_threads(12, send)
    # then each (source, messageId) is stored once, queued once, and the per-request counts add up
    per_source = {s.pk: set() for s in sources}
    for source, ids in requests:
        per_source[source.pk].update(ids)
    expected = sum(len(ids) for ids in per_source.values())  # 2 x 5 shared + 12 x 2 own
    assert expected == 34
    assert Event.objects.count() == EventDedup.objects.count() == expected
    assert queued_event_ids() == sorted(Event.objects.values_list("pk", flat=True))
    for source in sources:
        stored = list(Event.objects.filter(source=source).values_list("message_id", flat=True))
        assert sorted(stored) == sorted(per_source[source.pk])
    assert sum(counts.values()) == expected
    # every request stored its own two ids; the shared ones went to exactly one request per source
    assert all(count >= 2 for count in counts.values())


@pytest.mark.django_db(transaction=True)
def test_a_request_the_database_refuses_fails_alone_and_the_rest_of_its_group_is_stored():
    # given a group holding a good request and one for a source deleted after it was looked up
    # (the write-key cache still held it), plus a rejected message in the good request
    good, gone = Source.objects.create(name="good"), Source.objects.create(name="gone")
    gone_pk = gone.pk
    Source.objects.filter(pk=gone_pk).delete()
    now = datetime.now(UTC)

    def write(source, ids, rejections=()):
        return services._write_for(
            source=source, messages=_messages(ids, now), rejections=rejections, received_at=now
        )

    from events.ingest import Rejection

    group = [
        Pending(payload=write(good, ["g1", "g2"], [Rejection("bad type", {"type": "x"})]), size=2),
        Pending(payload=write(gone, ["x1"]), size=1),
        Pending(payload=write(good, ["g2", "g3"]), size=2),
    ]
    # when the group is written
    services._store_group(group)
    # then the refused request has its error, the others their exact counts, all stored once
    assert isinstance(group[1].error, IntegrityError)
    assert [group[0].result, group[2].result] == [2, 1]
    assert sorted(Event.objects.values_list("message_id", flat=True)) == ["g1", "g2", "g3"]
    assert EventDedup.objects.filter(source=good).count() == 3
    assert list(RejectedEvent.objects.values_list("reason", "payload")) == [("bad type", {"type": "x"})]
