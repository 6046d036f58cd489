"""Deleting a person's rows from the event log (called by privacy's erasure). A module of its own
rather than part of services/queue.py so the ingestion write path can change without touching this."""

from collections.abc import Collection, Sequence
from datetime import datetime

from django.db import transaction
from django.db.models import CASCADE, Q, TextField
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


def events_delete(*, event_ids: Collection[int], received_at: Sequence[datetime] | None = None) -> Counts:
    """Delete events by id (out of the queue, with the projections that point at them), one
    transaction per DELETE_BATCH. Returns rows deleted per model label. With `received_at` (each
    id's, in the same order) the batches go in received_at order and each reads and deletes the
    events within its batch's received_at bounds, so Postgres prunes to the months they are in;
    an id alone is probed in every monthly partition."""
    if received_at is None:
        pairs = [(pk, None) for pk in sorted(set(event_ids))]
    else:
        pairs = sorted(set(zip(event_ids, received_at, strict=True)), key=lambda pair: (pair[1], pair[0]))
    deleted: Counts = {}
    for start in range(0, len(pairs), DELETE_BATCH):
        chunk = pairs[start : start + DELETE_BATCH]
        ids = sorted(pk for pk, _ in chunk)
        with transaction.atomic():
            ingest_batches_forget(event_ids=ids)
            if received_at is None:
                _add(deleted, Event.objects.filter(pk__in=ids).delete()[1])
            else:
                _add(deleted, _delete_bounded(ids, low=chunk[0][1], high=chunk[-1][1]))
    return deleted


def _delete_bounded(ids: list[int], *, low: datetime, high: datetime) -> Counts:
    """What Event.objects.filter(pk__in=ids).delete() does, with received_at bounds on every
    statement that can take them. The ORM's collector deletes the events by id alone (in
    statements of 100 ids, each probing every partition) and the rows pointing at them likewise;
    here each related model goes first through its own manager's delete (its own cascades
    intact), bounded when it is co-partitioned (has received_at), then the events in one bounded
    DELETE. A relation that is not a plain CASCADE falls back to the ORM."""
    events = Event.objects.filter(pk__in=ids, received_at__gte=low, received_at__lte=high)
    # Hidden ones included: the queue's and the projection's relations are related_name="+".
    relations = [
        rel
        for rel in Event._meta.get_fields(include_hidden=True)
        if rel.auto_created and not rel.concrete and (rel.one_to_many or rel.one_to_one or rel.many_to_many)
    ]
    if any(rel.on_delete is not CASCADE or rel.many_to_many for rel in relations):
        return events.delete()[1]
    deleted: Counts = {}
    for rel in relations:
        related = rel.related_model._base_manager.filter(**{f"{rel.field.name}__in": ids})
        if any(field.name == "received_at" for field in rel.related_model._meta.concrete_fields):
            related = related.filter(received_at__gte=low, received_at__lte=high)
        _add(deleted, related.delete()[1])
    _add(deleted, {Event._meta.label: events._raw_delete(events.db)})
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
