"""Reading what stitching made of the events a test sent (payloads and `send` are in
tests.factories.events): draining the queue, live contacts, identities, the identity graph."""

import time

from django.db.models import Q

from contacts.models import Contact, ContactMerge, MergeReason
from events import services as event_services
from events.selectors import queued_event_count
from identity.models import ContactEvent, Identity


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
