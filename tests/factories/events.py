"""The tracking API's side: sources, Segment messages as clients send them to /v1/* (`*_payload`),
sending them, and storing messages the way the API does.

A payload is a dict sent over HTTP; what ends up in the database (events and identity's
projections) is built by the `stored_*` factories in tests.factories.identity."""

import json
import uuid
from datetime import UTC, datetime, timedelta

from events import services as event_services
from events.ingest.parse import normalise
from events.models import Event, Source

# The clock payloads are stamped from: `at=n` is T0 plus n minutes.
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def event_source() -> Source:
    """The "Website" source events are stored for (one is created the first time)."""
    return Source.objects.get_or_create(name="Website")[0]


def _payload(type_: str, *, anonymous_id=None, user_id=None, at: int = 0, **fields) -> dict:
    message = {
        "type": type_,
        "messageId": uuid.uuid4().hex,
        "timestamp": (T0 + timedelta(minutes=at)).isoformat(),
    }
    if anonymous_id is not None:
        message["anonymousId"] = anonymous_id
    if user_id is not None:
        message["userId"] = user_id
    return {**message, **fields}


def page_payload(path: str = "/", **kwargs) -> dict:
    return _payload("page", properties={"path": path, "url": f"https://example.com{path}"}, **kwargs)


def track_payload(event: str, **kwargs) -> dict:
    return _payload("track", event=event, **kwargs)


def identify_payload(traits: dict | None = None, **kwargs) -> dict:
    return _payload("identify", traits=traits or {}, **kwargs)


def alias_payload(previous_id: str, user_id: str, **kwargs) -> dict:
    return _payload("alias", previousId=previous_id, user_id=user_id, **kwargs)


def group_payload(group_id: str, traits: dict | None = None, **kwargs) -> dict:
    return _payload("group", groupId=group_id, traits=traits or {}, **kwargs)


def send(client, source, *messages: dict) -> None:
    """Post the payloads as one /v1/batch with the source's write key; the API must accept it."""
    body = json.dumps({"batch": list(messages), "writeKey": source.write_key})
    response = client.post("/v1/batch", body, content_type="application/json")
    assert response.status_code == 200, response.content


def store_messages(source: Source, *messages: dict, received_at: datetime | None = None) -> list[Event]:
    """Payloads stored the way the API stores them (normalised, then `events_store`: event rows and
    their ingest batch), without the HTTP request; each gets a messageId unless it has one.
    Returns the stored events in order."""
    received_at = received_at or datetime.now(UTC)
    normalised = [normalise({"messageId": uuid.uuid4().hex, **m}, received_at=received_at) for m in messages]
    event_services.events_store(source=source, messages=normalised, rejections=[], received_at=received_at)
    return list(Event.objects.order_by("-id")[: len(messages)])[::-1]
