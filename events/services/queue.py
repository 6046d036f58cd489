"""The ingest queue: storing accepted events (group commits, deduplicated by message id), draining
the queue through the configured processor, retrying dead letters, expiring the dedup window, and
taking events about to be deleted out of the queue."""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
import psycopg
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from core.wakeup import WakeUp
from events.ingest.group_commit import GroupCommit, Pending
from events.ingest.parse import Message, Rejection
from events.models import Event, EventDedup, IngestQueue, Source
from events.tasks import ingest_drain as ingest_drain_task

logger = logging.getLogger(__name__)

DEDUP_WINDOW = timedelta(days=7)
MAX_ATTEMPTS = 5


# A JSON \u0000 escape (an odd run of backslashes before u0000; an even run is an escaped
# backslash followed by the text "u0000").
_NUL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def _json(value) -> str:
    try:
        text = orjson.dumps(value).decode()
    except orjson.JSONEncodeError:  # integers beyond 64 bits: valid JSON, jsonb keeps them
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    # Postgres jsonb refuses \u0000; drop it rather than the whole event.
    return _NUL_ESCAPE.sub(r"\1", text) if "u0000" in text else text


# ONE statement stores the events of any number of requests (group commit, below), their dedup
# keys, their queue row and rejected messages: atomic on its own, so it runs in autocommit, and the
# commit that makes it durable is the statement's own. The rows travel as jsonb parameters
# unpacked by Postgres: quoting fourteen Python lists into array literals cost more per event than
# the inserts themselves (docs/benchmarks.md). `r` is the request a row came from, `n` its place
# in the group (event ids follow arrival order).
_INSERT_EVENTS = """
WITH input AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb) AS r(
        r int, src bigint, recv timestamptz, message_id text, type text, event text,
        anonymous_id text, user_id text, group_id text, previous_id text, properties jsonb,
        traits jsonb, context jsonb, ts timestamptz, ots timestamptz, sent_at timestamptz,
        is_bot boolean, n int)
), first AS (
    -- the first copy of a messageId repeated inside one group wins (a sort, not a per-row
    -- subquery: a correlated min() made a 500-event batch cost 43 ms in this statement alone)
    SELECT DISTINCT ON (src, message_id) * FROM input ORDER BY src, message_id, n
), fresh AS (
    INSERT INTO events_eventdedup (source_id, message_id, received_at)
    SELECT src, message_id, recv FROM first
    ON CONFLICT (source_id, message_id) DO NOTHING
    RETURNING source_id, message_id
), kept AS (
    SELECT f.* FROM first f JOIN fresh ON fresh.source_id = f.src AND fresh.message_id = f.message_id
), stored AS (
    INSERT INTO events_event (source_id, message_id, type, event, anonymous_id, user_id, group_id,
        previous_id, properties, traits, context, timestamp, original_timestamp, sent_at, received_at, is_bot)
    SELECT src, message_id, type, event, anonymous_id, user_id, group_id, previous_id, properties,
        traits, context, ts, ots, sent_at, recv, is_bot
    FROM kept ORDER BY n
    RETURNING id, received_at, anonymous_id, user_id
), queued AS (
    -- one queue row per slice of the statement (IngestBatch), not one per event
    INSERT INTO events_ingestbatch (event_ids, size, enqueued_at, slice)
    SELECT array_agg(id ORDER BY id), count(*), min(received_at), slice
    FROM (SELECT s.id, s.received_at, ({route})::smallint AS slice FROM stored s) AS routed
    GROUP BY slice
), rejected AS (
    INSERT INTO events_rejectedevent (source_id, received_at, reason, payload)
    SELECT src, recv, reason, payload
    FROM jsonb_to_recordset(%(rejected)s::jsonb)
        AS x(src bigint, recv timestamptz, reason text, payload jsonb)
)
SELECT r, count(*) FROM kept GROUP BY r
"""


# The queue is split into this many slices by the person an event routes to: a claim takes whole
# slices no other claim holds (see _BatchClaim), so concurrent drains stitch different people and
# do not queue on each other's identifier and contact locks. Changing it is safe: batches of a
# slice past the new count are still claimed (slices are read from the table, not counted).
QUEUE_SLICES = 8
# The advisory lock class of a claimed slice (two-int4 keys: apart from the identifier locks'
# bigint keys).
SLICE_LOCK_CLASS = 2020


def _default_route(*, slices: int) -> str:
    """An event's slice without the identity graph: a hash of its anonymous id (or user id)."""
    return f"mod(hashtext(coalesce(nullif(s.anonymous_id, ''), s.user_id)) & 2147483647, {int(slices)})"


def _insert_events_sql() -> str:
    # Settings hook: settings.INGEST_ROUTING names a function (slices=N) returning the SQL
    # expression of a stored row's slice (`s` with its anonymous_id and user_id columns);
    # identity provides it, routing by the contact the event's identifiers already resolve to.
    path = getattr(settings, "INGEST_ROUTING", None)
    return _insert_events_for(_INSERT_EVENTS, path, QUEUE_SLICES)


@functools.cache
def _insert_events_for(template: str, path: str | None, slices: int) -> str:
    route = import_string(path)(slices=slices) if path else _default_route(slices=slices)
    return template.format(route=route)


def _execute_server_bound(sql: str, params: dict) -> list[tuple]:
    """Run one statement with server-side parameter binding, as a prepared statement. Django's
    cursors bind on the client, which escapes the whole JSON document in Python (2.7 ms of a
    100-event batch's ~6 ms, measured), and Django turns psycopg's statement preparation off, so
    the five-part insert was parsed and planned again for every request. Errors still surface as
    Django's DatabaseError (the API maps them to 503)."""
    connection.ensure_connection()
    raw = connection.connection
    if raw.prepare_threshold is None:
        # Only server-bound cursors prepare; Django's own (client-side binding) never do.
        raw.prepare_threshold = PREPARE_THRESHOLD
    with connection.wrap_database_errors, psycopg.Cursor(raw) as cursor:
        cursor.execute(sql, params, prepare=True)
        return cursor.fetchall()


PREPARE_THRESHOLD = 5


@dataclass(slots=True)
class _Write:
    rows: list[dict]
    rejected: list[dict]


def _write_rows(write: _Write, *, r: int, n: int) -> None:
    for row in write.rows:
        row["r"], row["n"] = r, n
        n += 1
    for row in write.rejected:
        row["r"] = r


def _write_for(
    *, source: Source, messages: Sequence[Message], rejections: Sequence[Rejection], received_at: datetime
) -> _Write:
    # Datetimes are left to orjson, which writes them faster than datetime.isoformat().
    recv = received_at
    return _Write(
        rows=[
            {
                "src": source.pk,
                "recv": recv,
                "message_id": m.message_id,
                "type": m.type,
                "event": m.event,
                "anonymous_id": m.anonymous_id,
                "user_id": m.user_id,
                "group_id": m.group_id,
                "previous_id": m.previous_id,
                "properties": m.properties,
                "traits": m.traits,
                "context": m.context,
                "ts": m.timestamp,
                "ots": m.original_timestamp,
                "sent_at": m.sent_at,
                "is_bot": m.is_bot,
            }
            for m in messages
        ],
        rejected=[
            {"src": source.pk, "recv": recv, "reason": r.reason[:300], "payload": r.payload}
            for r in rejections
        ],
    )


def _store(writes: Sequence[_Write]) -> list[int]:
    """Run the statement for these requests' rows; the number newly stored, per request."""
    rows, rejected = [], []
    for r, write in enumerate(writes):
        _write_rows(write, r=r, n=len(rows))
        rows.extend(write.rows)
        rejected.extend(write.rejected)
    counts = dict(
        _execute_server_bound(_insert_events_sql(), {"rows": _json(rows), "rejected": _json(rejected)})
    )
    return [counts.get(r, 0) for r in range(len(writes))]


def _store_group(group: Sequence[Pending]) -> None:
    """The group commit's writer, on the leader's thread and connection (autocommit)."""
    try:
        counts = _store([item.payload for item in group])
    except (OperationalError, InterfaceError):
        raise  # the connection is gone: every request of the group answers 503
    except DatabaseError:
        if len(group) == 1:
            raise
        # Something in one request's rows was refused: store each request on its own, so only
        # the request at fault gets the error and the others are still stored exactly once.
        logger.warning("ingest group of %d failed; storing its requests one by one", len(group))
        for item in group:
            try:
                item.result = _store([item.payload])[0]
            except DatabaseError as exc:
                item.error = exc
    else:
        for item, count in zip(group, counts, strict=True):
            item.result = count
    if any(item.result for item in group):
        _wake_worker()


# Events per statement at most: bigger groups wait for the next leader.
GROUP_MAX_EVENTS = 5_000
_group_commit = GroupCommit(_store_group, max_size=GROUP_MAX_EVENTS)


def events_store(
    *, source: Source, messages: Sequence[Message], rejections: Sequence[Rejection], received_at: datetime
) -> int:
    """Store accepted messages (deduplicated per source) with their queue rows and the rejected
    messages with their reasons, in ONE transaction. Returns the number newly stored. The caller
    answers 200 only after this returns: an accepted event is committed.

    Outside a transaction, requests of concurrent threads share a statement and a commit (group
    commit); inside one (a caller's atomic block, the tests) the rows are written on the caller's
    connection, in its transaction."""
    write = _write_for(source=source, messages=messages, rejections=rejections, received_at=received_at)
    if not write.rows and not write.rejected:
        return 0
    if connection.in_atomic_block:
        stored = _store([write])[0]
        if stored:
            transaction.on_commit(_wake_worker, robust=True)
        return stored
    return _group_commit.submit(write, size=max(len(write.rows), 1))


# Publishing a Celery message costs ~540 µs of CPU (measured): at 2,000 requests/s one wake-up
# per request would eat a whole core. One per process per interval is enough, because a woken
# drain keeps polling for IDLE_POLL_SECONDS (events.tasks) after the queue runs dry, longer than
# this interval: an event whose wake-up was skipped is still picked up by the previous one.
WAKE_UP_INTERVAL_SECONDS = 0.5
_wake_up = WakeUp(interval=WAKE_UP_INTERVAL_SECONDS)


def _wake_worker() -> None:
    if _wake_up.due() is not None:
        ingest_drain_task.delay()


def _processor():
    # Settings hook: settings.INGEST_PROCESSOR names the function that processes queued events
    # (event_ids=[...]); identity provides it (identity.services.stitching.events_process).
    path = getattr(settings, "INGEST_PROCESSOR", None)
    return import_string(path) if path else None


def ingest_queue_process(*, limit: int = 500) -> int:
    """Claim about `limit` queued events (SKIP LOCKED: workers never wait on each other), hand
    them to the configured processor and delete their queue rows in the same transaction.
    Events retried on their own (IngestQueue) go first, then batches (IngestBatch). A failing
    claim is retried event by event, so one poison event cannot block the others."""
    processor = _processor()
    with transaction.atomic():
        ids = list(
            IngestQueue.objects.filter(dead_at__isnull=True)
            .order_by("event_id")
            .select_for_update(skip_locked=True)
            .values_list("event_id", flat=True)[:limit]
        )
        if ids:
            if _claim_run(processor, ids, lambda: IngestQueue.objects.filter(event_id__in=ids).delete()):
                return len(ids)
        else:
            claim = _BatchClaim.take(limit=limit)
            if not claim.event_ids:
                return 0
            ids = claim.event_ids
            if _claim_run(processor, ids, claim.release):
                return len(ids)
            # Each event gets a queue row of its own (committed with the batch's release):
            # from here on it is retried, counted and dead-lettered on its own.
            claim.release()
            IngestQueue.objects.bulk_create(
                [IngestQueue(event_id=pk, enqueued_at=timezone.now()) for pk in _existing(ids)],
                ignore_conflicts=True,
            )
    return sum(_process_one(event_id=event_id, processor=processor) for event_id in ids)


# A claim that fails on a deadlock or a serialization failure (another transaction, not its
# events) is run again whole, in a new savepoint, this many times in all before its events are
# retried one by one: 2,000 single-event transactions cost the worker about a minute.
CLAIM_ATTEMPTS = 3
_TRANSIENT = {"40P01", "40001"}  # deadlock_detected, serialization_failure


def _claim_run(processor, ids: list[int], done) -> bool:
    """Process a claim's events and drop them from the queue (`done`), in a savepoint; False when
    it failed (rolled back to the savepoint, so the caller still holds the claim's rows)."""
    for attempt in range(1, CLAIM_ATTEMPTS + 1):
        try:
            with transaction.atomic():
                if processor:
                    processor(event_ids=ids)
                done()
            return True
        except OperationalError as exc:
            if getattr(exc.__cause__, "sqlstate", None) in _TRANSIENT and attempt < CLAIM_ATTEMPTS:
                logger.info("ingest batch of %d: %s; running it again", len(ids), exc.__cause__.sqlstate)
                continue
            logger.warning(
                "ingest batch of %d failed; retrying its events one by one", len(ids), exc_info=True
            )
            return False
        except Exception:
            logger.warning(
                "ingest batch of %d failed; retrying its events one by one", len(ids), exc_info=True
            )
            return False
    return False


def _existing(event_ids: list[int]) -> list[int]:
    return list(Event.objects.filter(pk__in=event_ids).order_by("pk").values_list("pk", flat=True))


@dataclass(slots=True)
class _BatchClaim:
    """Batch rows locked by this transaction: whole ones (deleted on release) and at most one
    split (trimmed to the ids not taken)."""

    event_ids: list[int]
    whole: list[int]
    split: tuple[int, list[int]] | None

    # Rows asked for in the first round of a claim; later rounds ask for as many as the sizes
    # seen so far say are needed to reach the limit.
    FIRST_ROUND = 8

    @classmethod
    def take(cls, *, limit: int) -> _BatchClaim:
        """Whole slices, oldest first, each one no other claim holds (a transaction-level try-lock
        per slice: never a wait), until the claim reaches `limit`. Within a slice, its batches
        in id order, the last one split when it does not fit."""
        claim = cls(event_ids=[], whole=[], split=None)
        with connection.cursor() as cursor:
            cursor.execute(_SLICES_OLDEST_FIRST)
            for (slice_,) in cursor.fetchall():
                if len(claim.event_ids) >= limit:
                    break
                cursor.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [SLICE_LOCK_CLASS, slice_])
                if cursor.fetchone()[0]:
                    claim._take_slice(cursor, slice_, limit=limit)
        claim.event_ids.sort()
        return claim

    def _take_slice(self, cursor, slice_: int, *, limit: int) -> None:
        after, want = 0, self.FIRST_ROUND
        while len(self.event_ids) < limit:
            cursor.execute(
                """
                SELECT id, event_ids FROM events_ingestbatch WHERE slice = %s AND id > %s
                ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED
                """,
                [slice_, after, want],
            )
            rows = cursor.fetchall()
            for batch_id, event_ids in rows:
                room = limit - len(self.event_ids)
                if room <= 0:
                    break  # locked but untouched: released with the transaction
                if len(event_ids) <= room:
                    self.whole.append(batch_id)
                    self.event_ids.extend(event_ids)
                else:
                    self.split = (batch_id, event_ids[room:])
                    self.event_ids.extend(event_ids[:room])
            if len(rows) < want:
                break
            after = rows[-1][0]
            seen = len(self.whole) + (self.split is not None)
            average = len(self.event_ids) / max(seen, 1)
            want = min(500, max(1, -(-(limit - len(self.event_ids)) // max(int(average), 1))))

    def release(self) -> None:
        """The claimed events are done (or handed to per-event rows): drop them from the queue."""
        with connection.cursor() as cursor:
            if self.whole:
                cursor.execute("DELETE FROM events_ingestbatch WHERE id = ANY(%s)", [self.whole])
            if self.split:
                _batch_keep(cursor, *self.split)
        self.whole, self.split = [], None


# The slices that have queued batches, the one with the oldest batch first (a skip scan of the
# (slice, id) index: one probe per slice, however deep the queue).
_SLICES_OLDEST_FIRST = """
WITH RECURSIVE slices AS (
    (SELECT slice FROM events_ingestbatch ORDER BY slice LIMIT 1)
    UNION ALL
    SELECT (SELECT b.slice FROM events_ingestbatch b WHERE b.slice > slices.slice ORDER BY b.slice LIMIT 1)
    FROM slices WHERE slices.slice IS NOT NULL
)
SELECT slice FROM slices WHERE slice IS NOT NULL
ORDER BY (SELECT min(id) FROM events_ingestbatch b WHERE b.slice = slices.slice)
"""


def _batch_keep(cursor, batch_id: int, rest: list[int]) -> None:
    """Trim a batch row to the ids still queued (never empty: the caller deletes it then)."""
    cursor.execute(
        "UPDATE events_ingestbatch SET event_ids = %s, size = %s WHERE id = %s", [rest, len(rest), batch_id]
    )


def ingest_batches_forget(*, event_ids: Collection[int]) -> None:
    """Take events that are about to be deleted (erasure, retention) out of the queue, in the
    deleting transaction. The batches holding them are locked first, so a worker stitching one
    of them right now makes this wait and the caller then sees what it committed."""
    ids = sorted(set(event_ids))
    if not ids:
        return
    gone = set(ids)
    with transaction.atomic(), connection.cursor() as cursor:
        # A batch's ids ascend, so its first and last bound it; most deletions (old events) meet
        # no queued batch at all and the overlap test never runs. The literal array makes
        # Postgres hash the = ANY lookup (linear in the queued events, not their product).
        cursor.execute(
            """
            SELECT id, event_ids FROM events_ingestbatch b
            WHERE b.event_ids[1] <= %s AND b.event_ids[b.size] >= %s
              AND EXISTS (SELECT 1 FROM unnest(b.event_ids) AS e(id) WHERE e.id = ANY(%s::bigint[]))
            ORDER BY id FOR UPDATE
            """,
            [ids[-1], ids[0], ids],
        )
        for batch_id, queued in cursor.fetchall():
            rest = [pk for pk in queued if pk not in gone]
            if rest:
                _batch_keep(cursor, batch_id, rest)
            else:
                cursor.execute("DELETE FROM events_ingestbatch WHERE id = %s", [batch_id])
        cursor.execute("DELETE FROM events_ingestqueue WHERE event_id = ANY(%s::bigint[])", [ids])


def _process_one(*, event_id: int, processor) -> int:
    with transaction.atomic():
        row = IngestQueue.objects.select_for_update(skip_locked=True).filter(event_id=event_id).first()
        if row is None:
            return 0
        try:
            with transaction.atomic():
                if processor:
                    processor(event_ids=[event_id])
                row.delete()
            return 1
        except Exception as exc:
            row.attempts += 1
            row.last_error = f"{type(exc).__name__}: {exc}"[:2000]
            if row.attempts >= MAX_ATTEMPTS:
                row.dead_at = timezone.now()  # dead-lettered: kept, shown, never retried automatically
            row.save(update_fields=["attempts", "last_error", "dead_at"])
            return 0


def ingest_queue_retry(*, event_id: int) -> bool:
    """Put a dead-lettered event back in the queue with a fresh attempt count. Returns False when
    the row is no longer dead (already retried, or processed meanwhile)."""
    with transaction.atomic():
        updated = IngestQueue.objects.filter(event_id=event_id, dead_at__isnull=False).update(
            dead_at=None, attempts=0, last_error=""
        )
        if updated:
            transaction.on_commit(_wake_worker, robust=True)
    return bool(updated)


def event_dedup_expire(*, now: datetime | None = None) -> int:
    cutoff = (now or timezone.now()) - DEDUP_WINDOW
    deleted, _ = EventDedup.objects.filter(received_at__lt=cutoff).delete()
    return deleted
