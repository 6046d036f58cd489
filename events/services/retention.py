"""Event retention: deleting events older than their source's retention_days.

Retention deletes in batches rather than dropping partitions because `events_event` is one
unpartitioned table (docs/architecture.md, "Consent and retention"). Each batch is one
transaction: the queue rows, the hooks' derived rows (identity's projections and rollups, via
`settings.EVENTS_DELETE_HOOKS`, since events may not import identity), then the events.
"""

import datetime as dt
import logging
import time

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from events.models import Source
from events.services.queue import ingest_batches_forget

logger = logging.getLogger(__name__)

# Rows per DELETE: big enough that per-statement overhead vanishes, small enough that one batch
# (and its hooks' rollup rebuild) holds its locks for well under a second.
RETENTION_BATCH = 5000
# A run stops starting batches after this, well inside the Celery soft time limit (270 s); the
# next hourly run carries on where it stopped.
RETENTION_SECONDS = 120.0


def events_retention_enforce(
    *,
    now: dt.datetime | None = None,
    batch_size: int = RETENTION_BATCH,
    budget_seconds: float = RETENTION_SECONDS,
) -> int:
    """Delete events received longer ago than their source's retention_days; returns how many.
    Sources without retention are never read. Safe to run concurrently (batches skip locked rows)
    and to stop anywhere (every batch commits)."""
    now = now or timezone.now()
    deadline = time.monotonic() + budget_seconds
    deleted = 0
    sources = Source.objects.filter(retention_days__isnull=False).order_by("pk")
    for source_id, days in sources.values_list("pk", "retention_days"):
        cutoff = now - dt.timedelta(days=days)
        while time.monotonic() < deadline:
            count = _retention_batch(source_id=source_id, cutoff=cutoff, limit=batch_size)
            deleted += count
            if count < batch_size:
                break
    if deleted:
        logger.info("retention deleted %s events", deleted)
    return deleted


@transaction.atomic
def _retention_batch(*, source_id: int, cutoff: dt.datetime, limit: int) -> int:
    with connection.cursor() as cursor:
        # The (source, received_at) index finds the oldest rows; SKIP LOCKED lets an overlapping
        # run take other rows instead of waiting. NO KEY UPDATE, not UPDATE: a worker inserting
        # a projection of one of these events takes a KEY SHARE lock on it (the foreign key),
        # which UPDATE would block while this transaction waits for that worker's queue row
        # below: a deadlock. (Row locks are not UPDATEs: the append-only trigger does not fire.)
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
        cursor.execute("DELETE FROM events_event WHERE id = ANY(%s::bigint[])", [event_ids])
        return cursor.rowcount


def events_delete_hooks(*, event_ids: list[int]) -> None:
    """Let higher apps drop what they derived from these events, in the deleting transaction."""
    # Settings hook: settings.EVENTS_DELETE_HOOKS lists functions taking event_ids=[...]; identity
    # provides them (identity.services.projection.events_forget), since events may not import identity.
    for path in getattr(settings, "EVENTS_DELETE_HOOKS", []):
        import_string(path)(event_ids=event_ids)
