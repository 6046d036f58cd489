"""Per-source privacy: the consent switches the snippet honours and event retention.

Retention deletes in batches rather than dropping partitions because `events_event` is one
unpartitioned table (docs/architecture.md, "Consent and retention"). Each batch is one
transaction: the queue rows, the hooks' derived rows (identity's projections and rollups, via
`settings.EVENTS_DELETE_HOOKS`, since events may not import identity), then the events.
"""

import datetime as dt
import logging
import time
from collections.abc import Sequence

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from core.errors import DomainError
from events import permissions, services
from events.models import Source, SourceKind

logger = logging.getLogger(__name__)

MAX_RETENTION_DAYS = 36500
# Rows per DELETE: big enough that per-statement overhead vanishes, small enough that one batch
# (and its hooks' rollup rebuild) holds its locks for well under a second.
RETENTION_BATCH = 5000
# A run stops starting batches after this, well inside the Celery soft time limit (270 s); the
# next hourly run carries on where it stopped.
RETENTION_SECONDS = 120.0


@transaction.atomic
def source_save(
    *,
    actor: AbstractBaseUser | None,
    source: Source | None,
    name: str,
    kind: str = SourceKind.WEB,
    enabled: bool = True,
    allowed_origins: Sequence[str] = (),
    require_consent: bool = False,
    honor_gpc: bool = False,
    retention_days: int | None = None,
) -> Source:
    """Create (source=None) or update a source together with its privacy settings, atomically."""
    fields = {"name": name, "kind": kind, "enabled": enabled, "allowed_origins": allowed_origins}
    if source is None:
        source = services.source_create(actor=actor, **fields)
    else:
        source = services.source_update(actor=actor, source=source, **fields)
    return source_privacy_update(
        actor=actor,
        source=source,
        require_consent=require_consent,
        honor_gpc=honor_gpc,
        retention_days=retention_days,
    )


@transaction.atomic
def source_privacy_update(
    *,
    actor: AbstractBaseUser | None,
    source: Source,
    require_consent: bool,
    honor_gpc: bool,
    retention_days: int | None,
) -> Source:
    permissions.ensure_can_manage_sources(actor)
    if retention_days is not None and (
        type(retention_days) is not int or not 1 <= retention_days <= MAX_RETENTION_DAYS
    ):
        raise DomainError(
            "retention_days must be empty (keep forever) or 1 to 36500 days.",
            fields={"retention_days": [f"Ensure this value is between 1 and {MAX_RETENTION_DAYS}."]},
        )
    source = Source.objects.select_for_update().get(pk=source.pk)
    source.require_consent = bool(require_consent)
    source.honor_gpc = bool(honor_gpc)
    source.retention_days = retention_days
    source.save(update_fields=["require_consent", "honor_gpc", "retention_days"])
    return source


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
        services.ingest_batches_forget(event_ids=event_ids)
        events_delete_hooks(event_ids=event_ids)
        cursor.execute("DELETE FROM events_event WHERE id = ANY(%s::bigint[])", [event_ids])
        return cursor.rowcount


def events_delete_hooks(*, event_ids: list[int]) -> None:
    """Let higher apps drop what they derived from these events, in the deleting transaction."""
    for path in getattr(settings, "EVENTS_DELETE_HOOKS", []):
        import_string(path)(event_ids=event_ids)
