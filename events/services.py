import json
import logging
import time
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from cdp_crm.errors import DomainError
from events import permissions
from events.ingest import Message, Rejection
from events.models import EventDedup, IngestQueue, RejectedEvent, Source, SourceKind, new_write_key

logger = logging.getLogger(__name__)

DEDUP_WINDOW = timedelta(days=7)
MAX_ATTEMPTS = 5

_SOURCE_CACHE: dict[str, tuple[float, Source | None]] = {}
# Write keys are looked up on every request; a short cache saves a query per event and a disabled
# source stops being accepted within this many seconds.
SOURCE_CACHE_SECONDS = 10.0


def source_for_write_key(*, write_key: str) -> Source | None:
    now = time.monotonic()
    cached = _SOURCE_CACHE.get(write_key)
    if cached and now - cached[0] < SOURCE_CACHE_SECONDS:
        return cached[1]
    source = Source.objects.filter(write_key=write_key, enabled=True).first()
    if len(_SOURCE_CACHE) > 10_000:
        _SOURCE_CACHE.clear()
    _SOURCE_CACHE[write_key] = (now, source)
    return source


def _json(value) -> str:
    # Postgres jsonb refuses \u0000; drop it rather than the whole event.
    return json.dumps(value, separators=(",", ":"), default=str).replace("\\u0000", "")


_INSERT_EVENTS = """
WITH fresh AS (
    INSERT INTO events_eventdedup (source_id, message_id, received_at)
    SELECT %(source)s, m, %(received_at)s FROM unnest(%(message_ids)s::text[]) AS m
    ON CONFLICT (source_id, message_id) DO NOTHING
    RETURNING message_id
), stored AS (
    INSERT INTO events_event (source_id, message_id, type, event, anonymous_id, user_id, group_id,
        previous_id, properties, traits, context, timestamp, original_timestamp, sent_at, received_at, is_bot)
    SELECT %(source)s, r.message_id, r.type, r.event, r.anonymous_id, r.user_id, r.group_id,
        r.previous_id, r.properties::jsonb, r.traits::jsonb, r.context::jsonb, r.ts, r.ots, r.sent_at,
        %(received_at)s, r.is_bot
    FROM unnest(%(message_ids)s::text[], %(types)s::text[], %(events)s::text[], %(anonymous_ids)s::text[],
        %(user_ids)s::text[], %(group_ids)s::text[], %(previous_ids)s::text[], %(properties)s::text[],
        %(traits)s::text[], %(contexts)s::text[], %(timestamps)s::timestamptz[],
        %(original_timestamps)s::timestamptz[], %(sent_ats)s::timestamptz[], %(bots)s::bool[])
        AS r(message_id, type, event, anonymous_id, user_id, group_id, previous_id,
            properties, traits, context, ts, ots, sent_at, is_bot)
    WHERE r.message_id IN (SELECT message_id FROM fresh)
    RETURNING id
)
INSERT INTO events_ingestqueue (event_id, enqueued_at, attempts, last_error)
SELECT id, %(received_at)s, 0, '' FROM stored
RETURNING event_id
"""


def events_store(
    *, source: Source, messages: Sequence[Message], rejections: Sequence[Rejection], received_at: datetime
) -> int:
    """Store accepted messages (deduplicated per source) and queue them for processing, in ONE
    transaction; rejected messages are kept with their reasons. Returns the number newly stored.
    The caller answers 200 only after this returns: an accepted event is committed."""
    # A messageId repeated inside one request: the first copy wins (deduplicated here, in
    # linear time, so the SQL needs no per-row lookups).
    seen: set[str] = set()
    messages = [m for m in messages if not (m.message_id in seen or seen.add(m.message_id))]
    with transaction.atomic():
        stored = 0
        if messages:
            params = {
                "source": source.pk,
                "received_at": received_at,
                "message_ids": [m.message_id for m in messages],
                "types": [m.type for m in messages],
                "events": [m.event for m in messages],
                "anonymous_ids": [m.anonymous_id for m in messages],
                "user_ids": [m.user_id for m in messages],
                "group_ids": [m.group_id for m in messages],
                "previous_ids": [m.previous_id for m in messages],
                "properties": [_json(m.properties) for m in messages],
                "traits": [_json(m.traits) for m in messages],
                "contexts": [_json(m.context) for m in messages],
                "timestamps": [m.timestamp for m in messages],
                "original_timestamps": [m.original_timestamp for m in messages],
                "sent_ats": [m.sent_at for m in messages],
                "bots": [m.is_bot for m in messages],
            }
            with connection.cursor() as cursor:
                cursor.execute(_INSERT_EVENTS, params)
                stored = len(cursor.fetchall())
        if rejections:
            RejectedEvent.objects.bulk_create(
                [
                    RejectedEvent(
                        source=source, received_at=received_at, reason=r.reason[:300], payload=r.payload
                    )
                    for r in rejections
                ]
            )
        if stored:
            from events.tasks import ingest_drain

            transaction.on_commit(lambda: ingest_drain.delay(), robust=True)
    return stored


def _processor():
    path = getattr(settings, "INGEST_PROCESSOR", None)
    return import_string(path) if path else None


def ingest_queue_process(*, limit: int = 500) -> int:
    """Claim up to `limit` queued events (SKIP LOCKED: workers never wait on each other), hand
    them to the configured processor and delete their queue rows in the same transaction.
    A failing batch is retried row by row so one poison event cannot block the others."""
    processor = _processor()
    with transaction.atomic():
        ids = list(
            IngestQueue.objects.filter(dead_at__isnull=True)
            .order_by("enqueued_at", "event_id")
            .select_for_update(skip_locked=True)
            .values_list("event_id", flat=True)[:limit]
        )
        if not ids:
            return 0
        try:
            with transaction.atomic():
                if processor:
                    processor(event_ids=ids)
                IngestQueue.objects.filter(event_id__in=ids).delete()
            return len(ids)
        except Exception:
            logger.warning(
                "ingest batch of %d failed; retrying its events one by one", len(ids), exc_info=True
            )
    return sum(_process_one(event_id=event_id, processor=processor) for event_id in ids)


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


def event_dedup_expire(*, now: datetime | None = None) -> int:
    cutoff = (now or timezone.now()) - DEDUP_WINDOW
    deleted, _ = EventDedup.objects.filter(received_at__lt=cutoff).delete()
    return deleted


# --- sources (Settings → Sources). `actor` is the user making the change, or None for the system
# (a management command), which skips the permission check.


def _forget_cached_source(write_key: str) -> None:
    """This process stops accepting a changed key at once, other processes within
    SOURCE_CACHE_SECONDS. Forgotten now and again on commit: a request in between may re-cache
    the row as it was before the commit."""

    def forget() -> None:
        _SOURCE_CACHE.pop(write_key, None)

    forget()
    transaction.on_commit(forget)


@transaction.atomic
def source_create(
    *,
    actor: AbstractBaseUser | None,
    name: str,
    kind: str = SourceKind.WEB,
    enabled: bool = True,
    allowed_origins: Sequence[str] = (),
) -> Source:
    permissions.ensure_can_manage_sources(actor)
    name = name.strip()
    if not name:
        raise DomainError("A source needs a name.", fields={"name": ["This field is required."]})
    if kind not in SourceKind.values:
        raise DomainError(f"Unknown source kind {kind!r}.", fields={"kind": ["Not a valid choice."]})
    return Source.objects.create(
        name=name, kind=kind, enabled=enabled, allowed_origins=list(dict.fromkeys(allowed_origins))
    )


@transaction.atomic
def source_update(
    *,
    actor: AbstractBaseUser | None,
    source: Source,
    name: str,
    kind: str,
    enabled: bool,
    allowed_origins: Sequence[str],
) -> Source:
    permissions.ensure_can_manage_sources(actor)
    name = name.strip()
    if not name:
        raise DomainError("A source needs a name.", fields={"name": ["This field is required."]})
    if kind not in SourceKind.values:
        raise DomainError(f"Unknown source kind {kind!r}.", fields={"kind": ["Not a valid choice."]})
    source = Source.objects.select_for_update().get(pk=source.pk)
    source.name = name
    source.kind = kind
    source.enabled = enabled
    source.allowed_origins = list(dict.fromkeys(allowed_origins))
    source.save(update_fields=["name", "kind", "enabled", "allowed_origins"])
    _forget_cached_source(source.write_key)
    return source


@transaction.atomic
def source_rotate_write_key(*, actor: AbstractBaseUser | None, source: Source) -> Source:
    """Give the source a new write key; the old one stops working (within the key cache's few
    seconds in other processes). Sites still sending with the old key get 401 until updated."""
    permissions.ensure_can_manage_sources(actor)
    source = Source.objects.select_for_update().get(pk=source.pk)
    old_key = source.write_key
    source.write_key = new_write_key()
    source.save(update_fields=["write_key"])
    _forget_cached_source(old_key)
    logger.info("write key of source %s rotated", source.pk)
    return source
