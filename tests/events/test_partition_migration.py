"""The online move of an existing, unpartitioned event log (`manage.py events_partition_migrate`):
on a populated table, a copy killed midway resumes from its stored cursor, ingestion and erasure
during the copy and the swap lose nothing and resurrect nothing, and the partitioned table then
keeps the trigger, the dedup and the queue working."""

import base64
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.test import Client

from events import services
from events.ingest.parse import normalise
from events.models import Event, IngestBatch, Source
from events.selectors import queued_event_ids
from events.services import partition_migration as migration
from events.services import partitions
from identity.models import ContactEvent
from tests.conftest import ROOT, _test_database_url
from tests.identity.helpers import drain

pytestmark = pytest.mark.django_db(transaction=True)

ROWS = 6000


def relkind(name: str) -> str | None:
    with connection.cursor() as cursor:
        return partitions._relkind(cursor, name)


@pytest.fixture
def old_layout():
    """The test database's (empty) event log in the unpartitioned layout, as an install made
    before the partitioning has it; restored to the partitioned one afterwards, whatever happened."""
    migration.event_log_unpartition_empty()
    assert relkind(partitions.TABLE) == "r"
    yield
    with connection.cursor() as cursor:
        cursor.execute(migration._TRIGGERS_DROP)
        cursor.execute(f"DROP TABLE IF EXISTS {partitions.SHADOW}, {migration.STATE}, {migration.RETIRED}")
        if partitions._relkind(cursor, partitions.TABLE) == "r":
            cursor.execute(f"TRUNCATE {partitions.TABLE}")
    migration.event_log_partition_empty()
    assert partitions.event_log_is_partitioned()


def fill(source: Source) -> list[int]:
    """ROWS events over the last ~83 days (three or four months), written in SQL as history is."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO events_event (source_id, message_id, type, event, anonymous_id, user_id,
                group_id, previous_id, properties, traits, context, timestamp, received_at, is_bot)
            SELECT %s, 'old-' || g, 'page', 'Pricing',
                   CASE WHEN g %% 500 = 0 THEN 'erase-me' ELSE 'v' || (g %% 300) END, '', '', '',
                   '{"path": "/pricing"}', '{}', '{}',
                   now() - (%s - g) * interval '20 minutes', now() - (%s - g) * interval '20 minutes', false
            FROM generate_series(1, %s) g ORDER BY g
            RETURNING id
            """,
            [source.pk, ROWS, ROWS, ROWS],
        )
        return sorted(row[0] for row in cursor.fetchall())


def post_batch(client: Client, source: Source, message_ids: list[str]) -> None:
    payload = {
        "batch": [
            {"type": "track", "event": "Signed Up", "anonymousId": f"new-{m}", "messageId": m}
            for m in message_ids
        ]
    }
    auth = "Basic " + base64.b64encode(f"{source.write_key}:".encode()).decode()
    response = client.post(
        "/v1/batch", json.dumps(payload), content_type="application/json", headers={"Authorization": auth}
    )
    assert response.status_code == 200, response.content


class Ingest(threading.Thread):
    """Stores one event after another on its own connection (the API's group-commit path) until
    stopped; keeps the messageIds the database accepted."""

    def __init__(self, source: Source) -> None:
        super().__init__(daemon=True)
        self.source, self.accepted, self.errors = source, [], []
        self.stop = threading.Event()

    def run(self) -> None:
        from django.db import connection as own

        n = 0
        try:
            while not self.stop.is_set():
                n += 1
                now = dt.datetime.now(dt.UTC)
                raw = {
                    "type": "track",
                    "event": "Live",
                    "anonymousId": f"live-{n % 7}",
                    "messageId": f"live-{n}",
                }
                message = normalise(raw, received_at=now)
                if services.events_store(
                    source=self.source, messages=[message], rejections=[], received_at=now
                ):
                    self.accepted.append(f"live-{n}")
        except Exception as exc:  # surfaced by the test
            self.errors.append(exc)
        finally:
            own.close()


def wait_for(condition, *, timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_a_populated_event_log_moves_online_resumes_after_a_kill_and_loses_nothing(old_layout, paused_worker):
    client = Client()
    web = Source.objects.create(name="Web")
    old_ids = fill(web)
    erased = set(Event.objects.filter(anonymous_id="erase-me").values_list("pk", flat=True))
    assert len(erased) == ROWS // 500
    # a few old events still queued for stitching
    IngestBatch.objects.create(event_ids=old_ids[:5], size=5, enqueued_at=dt.datetime.now(dt.UTC))

    # given the copy running in another process, slowly, killed (SIGKILL) midway
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "events_partition_migrate", "--batch", "200", "--pause", "0.05"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": _test_database_url()},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(
            lambda: (s := migration.event_log_copy_state()) is not None and s.copied_through >= 1500,
            what="the copy to get going",
        )
    finally:
        proc.send_signal(signal.SIGKILL)
        output = proc.communicate()[0].decode()
    state = migration.event_log_copy_state()
    assert 0 < state.copied_through < state.high == old_ids[-1], output
    assert relkind(partitions.TABLE) == "r" and relkind(partitions.SHADOW) == "p"

    # while the copy is stopped: ingestion (new rows reach the new table through the trigger),
    # a duplicate messageId (deduplicated), and an erasure of rows copied and not yet copied
    post_batch(client, web, ["during-1", "during-2", "during-3"])
    post_batch(client, web, ["during-1"])
    assert Event.objects.filter(message_id__startswith="during-").count() == 3
    assert services.events_delete_for_identifiers(identifiers=["erase-me"])["events.Event"] == len(erased)
    assert any(pk <= state.copied_through for pk in erased) and any(
        pk > state.copied_through for pk in erased
    )

    # when the copy resumes, with events arriving the whole time, through the verify and the swap
    live = Ingest(web)
    live.start()
    wait_for(lambda: len(live.accepted) >= 5, what="live ingestion")
    out = StringIO()
    try:
        call_command("events_partition_migrate", batch=1000, stdout=out)
        count_at_swap = len(live.accepted)
        wait_for(lambda: len(live.accepted) >= count_at_swap + 5, what="ingestion after the swap")
    finally:
        live.stop.set()
        live.join(timeout=30)
    assert not live.errors, live.errors
    assert "swapped" in out.getvalue(), out.getvalue()
    # it went on from the stored cursor: the rows before it were not copied again
    assert f"copying ids {state.copied_through}.." in out.getvalue()

    # then events_event is the partitioned table, holding every row exactly once
    assert partitions.event_log_is_partitioned() and relkind(migration.RETIRED) == "r"
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), count(DISTINCT id) FROM events_event")
        total, distinct = cursor.fetchone()
        # in the partition of its month
        cursor.execute(
            """
            SELECT count(*) FROM events_event
            WHERE tableoid::regclass::text
                <> 'events_event_y' || to_char(received_at AT TIME ZONE 'UTC', 'YYYY"m"MM')
            """
        )
        misplaced = cursor.fetchone()[0]
    during = set(Event.objects.filter(message_id__startswith="during-").values_list("pk", flat=True))
    live_ids = set(Event.objects.filter(message_id__in=live.accepted).values_list("pk", flat=True))
    assert len(live_ids) == len(live.accepted) > count_at_swap
    assert total == distinct == len(old_ids) - len(erased) + 3 + len(live.accepted)
    assert set(Event.objects.values_list("pk", flat=True)) == (set(old_ids) - erased) | during | live_ids
    assert misplaced == 0
    assert not migration.event_log_copy_state() and relkind(partitions.SHADOW) is None

    # the append-only trigger, the dedup, the id sequence and the queue work on the new table
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        Event.objects.filter(pk=old_ids[10]).update(event="tampered")
    post_batch(client, web, ["during-2", "after-1"])
    (after,) = Event.objects.filter(message_id__in=["during-2", "after-1"]).exclude(pk__in=during)
    assert after.message_id == "after-1" and after.pk > max(live_ids | during)
    assert set(queued_event_ids()) >= set(old_ids[:5]) | during | {after.pk}
    drain()
    assert queued_event_ids() == []
    projected = set(ContactEvent.objects.values_list("event_id", flat=True))
    assert set(old_ids[:5]) | during | live_ids | {after.pk} <= projected

    # and --drop-old drops the retired table
    call_command("events_partition_migrate", drop_old=True, stdout=StringIO())
    assert relkind(migration.RETIRED) is None


def test_the_swap_refuses_an_unfinished_copy_and_prepare_is_idempotent(old_layout):
    web = Source.objects.create(name="Web")
    fill(web)
    first = migration.event_log_copy_prepare()
    assert migration.event_log_copy_prepare() == first
    migration.event_log_copy_batch(limit=100)
    with pytest.raises(RuntimeError, match="not finished"):
        migration.event_log_copy_swap()
    assert relkind(partitions.TABLE) == "r"
    out = StringIO()
    call_command("events_partition_migrate", batch=2500, no_swap=True, stdout=out)
    assert f"verified: {ROWS} rows in both tables" in out.getvalue()
    assert relkind(partitions.TABLE) == "r"
    call_command("events_partition_migrate", stdout=out)
    assert partitions.event_log_is_partitioned() and Event.objects.count() == ROWS
