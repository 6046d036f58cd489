"""Deleting a person's rows from the event log (called by privacy's erasure). A module of its own
rather than part of services/queue.py so the ingestion write path can change without touching this."""

from collections.abc import Collection

from django.db import transaction
from django.db.models import Q, TextField
from django.db.models.functions import Cast

from events.models import Event, RejectedEvent
from events.services.queue import ingest_batches_forget

# Per transaction: short locks, and a crash loses at most one batch of progress (the caller
# resumes from what is left).
DELETE_BATCH = 2000


Counts = dict[str, int]


def _add(total: Counts, counts: Counts) -> Counts:
    for label, n in counts.items():
        if n:
            total[label] = total.get(label, 0) + n
    return total


def _delete_in_batches(queryset, model) -> Counts:
    deleted: Counts = {}
    while True:
        with transaction.atomic():
            ids = list(queryset.order_by("pk").values_list("pk", flat=True)[:DELETE_BATCH])
            if not ids:
                return deleted
            if model is Event:
                ingest_batches_forget(event_ids=ids)
            # The ORM's collector also removes the rows pointing at them (queue, projections).
            _add(deleted, model.objects.filter(pk__in=ids).delete()[1])


def events_delete(*, event_ids: Collection[int]) -> Counts:
    """Delete events by id (out of the queue, with the projections that point at them), one
    transaction per DELETE_BATCH. Returns rows deleted per model label."""
    ids = sorted(set(event_ids))
    deleted: Counts = {}
    for start in range(0, len(ids), DELETE_BATCH):
        with transaction.atomic():
            chunk = ids[start : start + DELETE_BATCH]
            ingest_batches_forget(event_ids=chunk)
            _add(deleted, Event.objects.filter(pk__in=chunk).delete()[1])
    return deleted


def events_delete_for_identifiers(*, identifiers: Collection[str]) -> Counts:
    """Delete events sent with one of these anonymous ids, user ids or previous ids."""
    values = sorted(set(identifiers))
    if not values:
        return {}
    match = Q(anonymous_id__in=values) | Q(user_id__in=values) | Q(previous_id__in=values)
    return _delete_in_batches(Event.objects.filter(match), Event)


def rejected_events_delete_mentioning(*, identifiers: Collection[str]) -> Counts:
    """Delete rejected messages whose payload mentions one of the identifiers anywhere (a rejected
    payload has no shape to rely on, so this is a substring search over its text, case-insensitive)."""
    values = sorted({v for v in identifiers if v})
    if not values:
        return {}
    text = Cast("payload", output_field=TextField())
    match = Q()
    for value in values:
        match |= Q(payload_text__icontains=value)
    queryset = RejectedEvent.objects.alias(payload_text=text).filter(match)
    return _delete_in_batches(queryset, RejectedEvent)
