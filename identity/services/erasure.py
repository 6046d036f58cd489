"""What the identity app holds on a person, for privacy's erasure and export: their identifiers,
the events projected onto them, and the stitching warnings that name them."""

from collections.abc import Collection
from datetime import datetime

from django.db import transaction
from django.db.models import Q

from events.services.suppression import value_hash
from identity.models import ContactEvent, Identity, IdentityWarning, SplitRule


def person_identifier_values(*, contact_ids: Collection[int]) -> list[str]:
    """Every identifier value (all kinds) linked to these contacts."""
    return sorted(set(Identity.objects.filter(contact_id__in=contact_ids).values_list("value", flat=True)))


def person_identities(*, contact_ids: Collection[int]) -> list[Identity]:
    return list(Identity.objects.filter(contact_id__in=contact_ids).order_by("kind", "value", "pk"))


def person_events(*, contact_ids: Collection[int], limit: int) -> list[tuple[int, datetime]]:
    """Up to `limit` (event id, received_at) of events projected onto these contacts, oldest
    received first: with each id's received_at the event log's deletes are planned on the months
    the batch falls in (an id alone probes every partition)."""
    return list(
        ContactEvent.objects.filter(contact_id__in=contact_ids)
        .order_by("received_at", "event_id")
        .values_list("event_id", "received_at")[:limit]
    )


def person_event_ids(*, contact_ids: Collection[int], limit: int) -> list[int]:
    """Up to `limit` ids of events projected onto these contacts, oldest first."""
    return list(
        ContactEvent.objects.filter(contact_id__in=contact_ids)
        .order_by("event_id")
        .values_list("event_id", flat=True)[:limit]
    )


def person_contact_events(*, contact_ids: Collection[int]):
    """The person's projected events with the stored event, oldest first (an iterator for exports)."""
    return (
        ContactEvent.objects.filter(contact_id__in=contact_ids)
        .select_related("event")
        .order_by("event_id")
        .iterator(chunk_size=1000)
    )


@transaction.atomic
def identity_warnings_delete(*, contact_ids: Collection[int], identifiers: Collection[str]) -> int:
    """Warnings about these contacts or naming one of their identifiers (blocked-value warnings
    have no contact)."""
    match = Q(contact_id__in=contact_ids) | Q(other_contact_id__in=contact_ids)
    values = [v for v in identifiers if v]
    if values:
        match |= Q(identity_value__in=values)
        for value in values:
            match |= Q(detail__icontains=value)
    deleted, _ = IdentityWarning.objects.filter(match).delete()
    return deleted


def person_event_count(*, contact_ids: Collection[int]) -> int:
    return ContactEvent.objects.filter(contact_id__in=contact_ids).count()


@transaction.atomic
def split_rules_delete(*, identifiers: Collection[str]) -> int:
    """Delete the Admin split rules that name any of these identifiers (by digest)."""
    hashes = sorted({value_hash(v) for v in identifiers if v})
    if not hashes:
        return 0
    deleted, _ = SplitRule.objects.filter(Q(left__overlap=hashes) | Q(right__overlap=hashes)).delete()
    return deleted
