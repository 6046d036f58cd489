"""Events the app itself writes (an email sent from the CRM, its opens and clicks): Segment-shaped
messages through the same normalisation, dedup and queue as POST /v1/batch, into a source of the
app's own, so every reader of the log (stitching, segments, scores, insights, the timeline) sees
them like any tracked event and a user sees where they came from on the Sources page."""

from collections.abc import Sequence
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from events.ingest.parse import Message, Rejection, normalise
from events.models import Source, SourceKind


class ServerEventRejected(ValueError):
    """A message the app built does not pass the ingestion checks (a bug in the caller)."""


def internal_source(*, name: str) -> Source:
    """The app's own source called `name` (created on first use; a user may rename it or set
    its retention like any other, but it never takes writes from outside: its write key is
    never shown in a snippet)."""
    source = Source.objects.filter(name=name, kind=SourceKind.SERVER).order_by("pk").first()
    if source is not None:
        return source
    try:
        with transaction.atomic():
            return Source.objects.create(name=name, kind=SourceKind.SERVER)
    except IntegrityError:  # pragma: no cover - write key collision, retried once
        return Source.objects.create(name=name, kind=SourceKind.SERVER)


def server_events_store(
    *, source: Source, payloads: Sequence[dict], received_at: datetime | None = None
) -> int:
    """Store Segment-shaped `payloads` (type, event, anonymousId/userId, properties, timestamp,
    messageId: a stable messageId makes a retried caller's events count once). Returns how many
    were new. Raises ServerEventRejected, storing nothing, when one fails the checks."""
    from events.services.queue import events_store  # queue imports the ingestion modules

    received_at = received_at or timezone.now()
    messages: list[Message] = []
    for payload in payloads:
        message = normalise(payload, received_at=received_at)
        if isinstance(message, Rejection):
            raise ServerEventRejected(f"{message.reason}: {payload!r}"[:500])
        messages.append(message)
    if not messages:
        return 0
    return events_store(source=source, messages=messages, rejections=[], received_at=received_at)
