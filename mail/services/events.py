"""Email activity as events in the CDP event log, on the contact (the one stream: segments, hot
rules, scores, insights and the timeline read `Email Sent` like a page view).

Each event is a Segment `track` in the app's own "CRM email" source, with the anonymous id that
names the contact (identity.services.contact_ref): the stitching worker puts it on that contact,
or on its survivor after a merge. messageId is derived from what happened (the send, the open's
sequence) so a retried task records it once (the event log's dedup)."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction

from events import services as event_services
from identity import services as identity_services

EMAIL_SOURCE_NAME = "CRM email"

# The names every reader keys on (segment conditions, hot rules, score rules, insights).
EMAIL_SENT = "Email Sent"
EMAIL_OPENED = "Email Opened"
EMAIL_LINK_CLICKED = "Email Link Clicked"
EMAIL_REPLIED = "Email Replied"
EMAIL_BOUNCED = "Email Bounced"
EMAIL_EVENTS = (EMAIL_SENT, EMAIL_OPENED, EMAIL_LINK_CLICKED, EMAIL_REPLIED, EMAIL_BOUNCED)


@dataclass(frozen=True, slots=True)
class EmailEvent:
    contact_id: int
    name: str  # one of EMAIL_EVENTS
    # Stable for the occurrence ("send:12", "open:12:3"): the dedup key of a retried write.
    key: str
    timestamp: datetime
    properties: dict = field(default_factory=dict)
    context: dict = field(default_factory=dict)


def email_events_record(*, events: Sequence[EmailEvent]) -> int:
    """Append `events` to the event log (one transaction; the stitching worker is woken after
    commit). Returns how many were new (a repeated key is stored once)."""
    if not events:
        return 0
    for event in events:
        if event.name not in EMAIL_EVENTS:
            raise ValueError(f"not an email event: {event.name!r}")
    payloads = [
        {
            "type": "track",
            "event": event.name,
            "anonymousId": identity_services.contact_ref(contact_id=event.contact_id),
            "messageId": f"mail:{event.key}",
            "timestamp": event.timestamp.isoformat(),
            "properties": event.properties,
            "context": {"library": {"name": "cdp-crm mail"}, **event.context},
        }
        for event in events
    ]
    with transaction.atomic():
        source = event_services.internal_source(name=EMAIL_SOURCE_NAME)
        return event_services.server_events_store(source=source, payloads=payloads)
