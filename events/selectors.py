from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce, TruncMinute
from django.utils import timezone

from events.models import Event, IngestBatch, IngestQueue, RejectedEvent, Source


def source_counts() -> dict[str, int]:
    return {"sources": Source.objects.count(), "enabled": Source.objects.filter(enabled=True).count()}


def source_list(*, with_counts_since: datetime | None = None) -> QuerySet[Source]:
    """Sources by name; with `with_counts_since`, each carries `recent_events`, the number of
    events received since then (one subquery per row on the (source, received_at) index)."""
    sources = Source.objects.order_by("name", "pk")
    if with_counts_since is None:
        return sources
    recent = (
        Event.objects.filter(source=OuterRef("pk"), received_at__gte=with_counts_since)
        .order_by()
        .values("source")
        .annotate(n=Count("*"))
        .values("n")
    )
    return sources.annotate(recent_events=Coalesce(Subquery(recent, output_field=IntegerField()), 0))


def source_list_last_day() -> QuerySet[Source]:
    return source_list(with_counts_since=timezone.now() - timedelta(hours=24))


def source_latest_event_at(*, source: Source) -> datetime | None:
    """When the newest event from this source arrived (None: never)."""
    return (
        Event.objects.filter(source=source)
        .order_by("-received_at")
        .values_list("received_at", flat=True)
        .first()
    )


def source_by_write_key(*, write_key: str) -> Source | None:
    """An enabled source by its key, read fresh (no cache): for pages, not the ingestion hot path."""
    return Source.objects.filter(write_key=write_key, enabled=True).first()


@dataclass(frozen=True, slots=True)
class EventFilters:
    type: str = ""
    name: str = ""
    source_id: int | None = None
    # matches the anonymous id or the user id, exactly (both have indexes)
    person: str = ""


def event_debug_list(*, filters: EventFilters, after_id: int | None = None, limit: int = 50) -> list[Event]:
    """Newest events first, across sources; `after_id` returns only events stored after that one
    (the debugger's poll). Ordered by id: it is the arrival order and walks the primary key."""
    events = Event.objects.select_related("source").order_by("-id")
    if filters.type:
        events = events.filter(type=filters.type)
    if filters.name:
        events = events.filter(event__icontains=filters.name)
    if filters.source_id:
        events = events.filter(source_id=filters.source_id)
    if filters.person:
        events = events.filter(Q(anonymous_id=filters.person) | Q(user_id=filters.person))
    if after_id is not None:
        events = events.filter(id__gt=after_id)
    return list(events[:limit])


def rejected_event_list(*, source_id: int | None = None, limit: int = 50) -> QuerySet[RejectedEvent]:
    rejected = RejectedEvent.objects.select_related("source").order_by("-received_at", "-id")
    if source_id:
        rejected = rejected.filter(source_id=source_id)
    return rejected[:limit]


def dead_letter_list(*, limit: int = 100) -> QuerySet[IngestQueue]:
    """Queue rows that failed too often and are no longer retried automatically."""
    return (
        IngestQueue.objects.filter(dead_at__isnull=False)
        .select_related("event", "event__source")
        .order_by("-dead_at", "-event_id")[:limit]
    )


def queued_event_ids() -> list[int]:
    """Stored events still waiting for a worker (batches and per-event retries, dead letters
    left out), oldest first."""
    ids = [pk for batch in IngestBatch.objects.values_list("event_ids", flat=True) for pk in batch]
    ids += IngestQueue.objects.filter(dead_at__isnull=True).values_list("event_id", flat=True)
    return sorted(ids)


def queued_event_count() -> int:
    batched = IngestBatch.objects.aggregate(n=Sum("size"))["n"] or 0
    return batched + IngestQueue.objects.filter(dead_at__isnull=True).count()


def dead_letter_count() -> int:
    return IngestQueue.objects.filter(dead_at__isnull=False).count()


def event_counts_per_minute(
    *, now: datetime, minutes: int = 60, source_id: int | None = None
) -> list[tuple[datetime, int]]:
    """Events received per minute over the last `minutes` minutes, oldest first, zeros included.
    The source filter always names the sources so that Postgres can range-scan the
    (source, received_at) index instead of reading the whole event table."""
    end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    start = end - timedelta(minutes=minutes)
    source_ids = [source_id] if source_id else list(Source.objects.values_list("pk", flat=True))
    rows = (
        Event.objects.filter(source_id__in=source_ids, received_at__gte=start, received_at__lt=end)
        .annotate(minute=TruncMinute("received_at"))
        .values("minute")
        .annotate(n=Count("id"))
        .values_list("minute", "n")
    )
    counts = dict(rows)
    return [
        (start + timedelta(minutes=i), counts.get(start + timedelta(minutes=i), 0)) for i in range(minutes)
    ]


def source_health(*, now: datetime | None = None) -> list[Source]:
    """Every source with `recent_events` (received in the last 24 h), `latest_event_at` and
    `recent_rejected` (messages refused in the last 24 h), in one query: each figure is a
    subquery on the (source, received_at) index of its table."""
    since = (now or timezone.now()) - timedelta(hours=24)
    latest = Event.objects.filter(source=OuterRef("pk")).order_by("-received_at").values("received_at")[:1]
    rejected = (
        RejectedEvent.objects.filter(source=OuterRef("pk"), received_at__gte=since)
        .order_by()
        .values("source")
        .annotate(n=Count("*"))
        .values("n")
    )
    return list(
        source_list(with_counts_since=since).annotate(
            latest_event_at=Subquery(latest),
            recent_rejected=Coalesce(Subquery(rejected, output_field=IntegerField()), 0),
        )
    )
