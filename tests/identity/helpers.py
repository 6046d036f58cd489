"""Sending events the way clients do (through /v1 with a write key) and reading the result."""

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

from django.db.models import Q

from contacts.models import Contact, ContactMerge, MergeReason
from events import services as event_services
from events.selectors import queued_event_count
from identity.models import ContactEvent, Identity

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _message(type_: str, *, anonymous_id=None, user_id=None, at: int = 0, **fields) -> dict:
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


def page(path: str = "/", **kwargs) -> dict:
    return _message("page", properties={"path": path, "url": f"https://example.com{path}"}, **kwargs)


def track(event: str, **kwargs) -> dict:
    return _message("track", event=event, **kwargs)


def identify(traits: dict | None = None, **kwargs) -> dict:
    return _message("identify", traits=traits or {}, **kwargs)


def alias(previous_id: str, user_id: str, **kwargs) -> dict:
    return _message("alias", previousId=previous_id, user_id=user_id, **kwargs)


def group(group_id: str, traits: dict | None = None, **kwargs) -> dict:
    return _message("group", groupId=group_id, traits=traits or {}, **kwargs)


def send(client, source, *messages: dict) -> None:
    body = json.dumps({"batch": list(messages), "writeKey": source.write_key})
    response = client.post("/v1/batch", body, content_type="application/json")
    assert response.status_code == 200, response.content


def drain() -> int:
    """Run the stitching worker's loop in this process until the queue is empty."""
    done = 0
    while n := event_services.ingest_queue_process(limit=500):
        done += n
    return done


def wait_for_worker(worker, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while queued_event_count():
        assert time.monotonic() < deadline, worker.output()[-3000:]
        time.sleep(0.05)


def live() -> list[Contact]:
    return list(Contact.objects.filter(merged_into__isnull=True).order_by("pk"))


def identities(contact: Contact) -> set[tuple[str, str]]:
    return set(Identity.objects.filter(contact=contact).values_list("kind", "value"))


def event_paths(contact: Contact) -> list[str]:
    return list(
        ContactEvent.objects.filter(contact=contact, type="page")
        .order_by("timestamp")
        .values_list("path", flat=True)
    )


def graph() -> dict:
    """The canonical shape of the identity graph, independent of contact ids: the partition of
    identifiers into live persons, each person's set of events, and how many automatic merges
    stand. Two runs over the same events agree on this exactly when they stitched alike."""
    persons = {}
    for contact_id, kind, value in Identity.objects.values_list("contact_id", "kind", "value"):
        persons.setdefault(contact_id, set()).add((kind, value))
    events = {}
    for contact_id, event_id in ContactEvent.objects.values_list("contact_id", "event_id"):
        events.setdefault(contact_id, set()).add(event_id)
    people = {
        (frozenset(persons.get(pk, ())), frozenset(events.get(pk, ())))
        for pk in Contact.objects.filter(merged_into__isnull=True).values_list("pk", flat=True)
        if pk in persons or pk in events
    }
    merges = ContactMerge.objects.filter(split_at__isnull=True).filter(~Q(reason=MergeReason.MANUAL)).count()
    return {"people": people, "merges": merges}
