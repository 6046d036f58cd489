from datetime import datetime, timedelta

from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from events.models import Event, Source


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
