"""Event retention: deleting events older than their source's retention_days.

`events_event` is partitioned by month of received_at (events/services/partitions.py). A month
that every source with rows in it has kept long enough is dropped whole: with the co-partitioned
tables' month present, `settings.EVENTS_MONTH_DROP_HOOKS` hear of the month set-based (identity
empties the rollups' month of days and refills what other months count there) and both tables'
partitions are detached and dropped in one transaction; otherwise its events are first taken out
of the queue and handed to the delete hooks (`settings.EVENTS_DELETE_HOOKS`, since events may not
import identity) in batches, exactly as deleted rows are (no per-row WAL, no vacuum either way). What
is left past a cutoff (the month that straddles it, months shared with a source that keeps
longer, the DEFAULT partition, or an event log not yet partitioned) goes in batches as before:
each batch one transaction with the queue rows, the hooks' derived rows, then the events.
"""

import datetime as dt
import logging
import time

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from events.models import Source
from events.services import partitions
from events.services.queue import ingest_batches_forget

logger = logging.getLogger(__name__)

# Rows per DELETE: big enough that per-statement overhead vanishes, small enough that one batch
# (and its hooks' rollup rebuild) holds its locks for well under a second.
RETENTION_BATCH = 5000
# A run stops starting batches after this, well inside the Celery soft time limit (270 s); the
# next hourly run carries on where it stopped.
RETENTION_SECONDS = 120.0
DEADLOCK_DETECTED = "40P01"


def events_retention_enforce(
    *,
    now: dt.datetime | None = None,
    batch_size: int = RETENTION_BATCH,
    budget_seconds: float = RETENTION_SECONDS,
) -> int:
    """Delete events received longer ago than their source's retention_days; returns how many.
    Whole months go by dropping their partition, the rest in batches. Nothing is read while no
    source has a retention. Safe to run concurrently (batches skip locked rows, partition work is
    serialised by an advisory lock) and to stop anywhere (every batch commits; a drop that did
    not happen is redone by the next run, whose hooks then find nothing left to forget)."""
    now = now or timezone.now()
    deadline = time.monotonic() + budget_seconds
    deleted = 0
    retention = dict(Source.objects.values_list("pk", "retention_days"))
    if not any(days is not None for days in retention.values()):
        return 0
    if partitions.event_log_is_partitioned():
        for partition in partitions.event_partitions_expired(now=now, retention=retention):
            dropped = _retention_drop(partition=partition, deadline=deadline, batch_size=batch_size)
            if dropped is None:
                break
            deleted += dropped
    for source_id, days in sorted((pk, days) for pk, days in retention.items() if days is not None):
        cutoff = now - dt.timedelta(days=days)
        while time.monotonic() < deadline:
            count = _retention_batch(source_id=source_id, cutoff=cutoff, limit=batch_size)
            deleted += count
            if count < batch_size:
                break
    if deleted:
        logger.info("retention deleted %s events", deleted)
    return deleted


def _retention_drop(*, partition: partitions.Partition, deadline: float, batch_size: int) -> int | None:
    """Drop a whole expired month; None when it could not (out of time, or the lock on the event
    log was not granted). Its events go out of the queue first, in batches (a month that ended
    rarely has any queued: one look at its id range settles it). With the co-partitioned tables'
    month present (identity_contactevent), settings.EVENTS_MONTH_DROP_HOOKS hear of the month
    set-based and its projection partition is dropped with the events'; otherwise the delete
    hooks hear of every event in it, in batches, as for deleted rows."""
    month_hooks = getattr(settings, "EVENTS_MONTH_DROP_HOOKS", [])
    whole = bool(month_hooks) and partitions.copartitions_present(partition=partition)
    first, last, count = partitions.event_partition_id_range(partition=partition)
    after = 0
    if not whole or (count and _queue_may_hold(first=first, last=last)):
        while ids := partitions.event_partition_ids(partition=partition, after=after, limit=batch_size):
            if time.monotonic() >= deadline:
                return None
            with transaction.atomic():
                # Out of the queue first (a worker stitching one of them makes this wait), as below;
                # a statement carrying 5,000 ids costs tens of milliseconds to parse and plan, so
                # look at the id range first.
                if _queue_may_hold(first=ids[0], last=ids[-1]):
                    ingest_batches_forget(event_ids=ids)
                if not whole:
                    events_delete_hooks(event_ids=ids)
            after = ids[-1]
    if time.monotonic() >= deadline:
        return None
    try:
        with transaction.atomic():
            after_drop = (
                [import_string(path)(start=partition.start, end=partition.end) for path in month_hooks]
                if whole
                else []
            )
            if not partitions.event_partition_drop(partition=partition):
                transaction.set_rollback(True)
                return None
            # Under the drop's lock_timeout: a hook's own lock (identity TRUNCATEs its rollups'
            # month) that is not granted in time gives way like the drop's.
            for callback in after_drop:
                callback()
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) not in (partitions.LOCK_NOT_AVAILABLE, DEADLOCK_DETECTED):
            raise
        logger.warning("retention: a lock to drop %s was not granted; next run", partition.name)
        return None
    # Every row of a month that ended is one the hooks heard of: nothing enters it any more.
    return count


def _queue_may_hold(*, first: int, last: int) -> bool:
    """Whether a queue row (a batch, whose ids ascend, or a retried event) may hold an id in
    [first, last]. A batch a worker holds right now is still visible here, so ingest_batches_forget
    then waits for it."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT EXISTS (SELECT 1 FROM events_ingestbatch b
                           WHERE b.event_ids[1] <= %(last)s AND b.event_ids[b.size] >= %(first)s)
                OR EXISTS (SELECT 1 FROM events_ingestqueue WHERE event_id BETWEEN %(first)s AND %(last)s)
            """,
            {"first": first, "last": last},
        )
        return cursor.fetchone()[0]


@transaction.atomic
def _retention_batch(*, source_id: int, cutoff: dt.datetime, limit: int) -> int:
    with connection.cursor() as cursor:
        # The (source, received_at) index finds the oldest rows; SKIP LOCKED lets an overlapping
        # run take other rows instead of waiting. NO KEY UPDATE, not UPDATE: a KEY SHARE lock
        # (a foreign key's check, the online migration's copy) must not wait behind it while this
        # transaction waits for a worker's queue row below. The projection's foreign key, whose
        # check took such a lock, is gone since the partitioning (a partitioned table cannot be
        # referenced by id alone). (Row locks are not UPDATEs: the append-only trigger does not fire.)
        cursor.execute(
            """
            SELECT id FROM events_event
            WHERE source_id = %s AND received_at < %s
            ORDER BY received_at
            LIMIT %s
            FOR NO KEY UPDATE SKIP LOCKED
            """,
            [source_id, cutoff, limit],
        )
        event_ids = sorted(row[0] for row in cursor.fetchall())
        if not event_ids:
            return 0
        # Out of the queue first: a worker holding their batch (stitching it right now) makes
        # this wait, so the projection it commits is visible to the hooks below.
        ingest_batches_forget(event_ids=event_ids)
        events_delete_hooks(event_ids=event_ids)
        # The cutoff again, so the DELETE is planned on the partitions below it only (an id alone
        # cannot be pruned: every partition's key would be probed for each id).
        cursor.execute(
            "DELETE FROM events_event WHERE id = ANY(%s::bigint[]) AND received_at < %s", [event_ids, cutoff]
        )
        return cursor.rowcount


def events_delete_hooks(*, event_ids: list[int]) -> None:
    """Let higher apps drop what they derived from these events, in the deleting transaction."""
    # Settings hook: settings.EVENTS_DELETE_HOOKS lists functions taking event_ids=[...]; identity
    # provides them (identity.services.projection.events_forget), since events may not import identity.
    for path in getattr(settings, "EVENTS_DELETE_HOOKS", []):
        import_string(path)(event_ids=event_ids)
