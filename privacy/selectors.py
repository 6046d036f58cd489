"""Reads: the erasure log and "Export person" (everything held on a person, as streamed JSON)."""

import json
from collections.abc import Iterator
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import QuerySet
from django.forms.models import model_to_dict

from contacts import selectors as contact_selectors
from contacts.models import Contact, ContactMerge
from core.errors import NotFound
from identity.services import erasure as identity_erasure
from mail.services import erasure as mail_erasure
from pipeline import selectors as pipeline_selectors
from pipeline.selectors import activities as activity_selectors
from privacy.models import ErasureRequest
from privacy.permissions import ensure_can_erase, ensure_can_export, ensure_can_see_erasures
from segments import selectors as segment_selectors

EXPORT_FORMAT_VERSION = 1


def erasure_list(*, user: AbstractBaseUser) -> QuerySet[ErasureRequest]:
    ensure_can_see_erasures(user)
    return ErasureRequest.objects.select_related("requested_by").order_by("-requested_at", "-pk")


def erasure_get(*, user: AbstractBaseUser, request_id: int) -> ErasureRequest:
    request = erasure_list(user=user).filter(pk=request_id).first()
    if request is None:
        raise NotFound(f"Erasure request {request_id} does not exist.")
    return request


def _dump(value: Any) -> str:
    return json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False)


def _contact(contact: Contact) -> dict[str, Any]:
    data = model_to_dict(contact, exclude=["merged_into"])
    data.update(
        id=contact.pk,
        merged_into=contact.merged_into_id,
        created_at=contact.created_at,
        updated_at=contact.updated_at,
    )
    return data


def _event(row) -> dict[str, Any]:
    e = row.event
    return {
        "id": e.pk,
        "contact_id": row.contact_id,
        "message_id": e.message_id,
        "type": e.type,
        "event": e.event,
        "anonymous_id": e.anonymous_id,
        "user_id": e.user_id,
        "group_id": e.group_id,
        "previous_id": e.previous_id,
        "properties": e.properties,
        "traits": e.traits,
        "context": e.context,
        "timestamp": e.timestamp,
        "original_timestamp": e.original_timestamp,
        "sent_at": e.sent_at,
        "received_at": e.received_at,
    }


def person_export(*, user: AbstractBaseUser, contact: Contact) -> Iterator[str]:
    """The person (contact + its tombstones) as one JSON document, yielded in pieces: events are
    read 1,000 at a time, so a long history streams in constant memory. Permission is checked
    before the first piece."""
    contact = contact_selectors.contact_surviving(contact=contact)
    ensure_can_export(user, contact)
    ids = contact_selectors.contact_person_ids(contact=contact)
    return _export(contact, ids)


def _export(contact: Contact, ids: list[int]) -> Iterator[str]:
    contacts = list(Contact.objects.filter(pk__in=ids).order_by("pk"))
    merges = ContactMerge.objects.filter(winner_id__in=ids).order_by("pk")
    head = {
        "format_version": EXPORT_FORMAT_VERSION,
        "contact": _contact(contact),
        "merged_contacts": [_contact(c) for c in contacts if c.pk != contact.pk],
        "identities": [
            {"kind": i.kind, "value": i.value, "contact_id": i.contact_id, "created_at": i.created_at}
            for i in identity_erasure.person_identities(contact_ids=ids)
        ],
        "merges": [
            {
                "id": m.pk,
                "winner": m.winner_id,
                "loser": m.loser_id,
                "reason": m.reason,
                "created_at": m.created_at,
                "split_at": m.split_at,
                "loser_snapshot": m.loser_snapshot,
            }
            for m in merges
        ],
        "activities": [
            model_to_dict(a) | {"id": a.pk}
            for a in activity_selectors.activities_of_contacts(contact_ids=ids)
        ],
        "tasks": [
            model_to_dict(t) | {"id": t.pk} for t in activity_selectors.tasks_of_contacts(contact_ids=ids)
        ],
        "deals": [
            model_to_dict(d, exclude=["participants"]) | {"id": d.pk}
            for d in pipeline_selectors.deals_of_contacts(contact_ids=ids)
        ],
        "segment_memberships": segment_selectors.memberships_of_contacts(contact_ids=ids),
    }
    yield _dump(head)[:-1] + ',"events":['
    first = True
    for row in identity_erasure.person_contact_events(contact_ids=ids):
        yield ("" if first else ",") + _dump(_event(row))
        first = False
    yield '],"emails":['
    addresses = [i.value for i in identity_erasure.person_identities(contact_ids=ids)]
    addresses += [c.email for c in contacts if c.email]
    first = True
    for message in mail_erasure.person_mail_export(contact_ids=ids, addresses=addresses):
        yield ("" if first else ",") + _dump(message)
        first = False
    yield "]}"


def person_erase_preview(*, user: AbstractBaseUser, contact: Contact) -> dict[str, Any]:
    """What "Erase person" will delete, for the confirmation page."""
    ensure_can_erase(user)
    contact = contact_selectors.contact_surviving(contact=contact)
    ids = contact_selectors.contact_person_ids(contact=contact)
    return {
        "contact": contact,
        "contacts": len(ids),
        "identities": len(identity_erasure.person_identities(contact_ids=ids)),
        "events": identity_erasure.person_event_count(contact_ids=ids),
        "activities": activity_selectors.activities_of_contacts(contact_ids=ids).count(),
        "tasks": activity_selectors.tasks_of_contacts(contact_ids=ids).count(),
        "memberships": len(segment_selectors.memberships_of_contacts(contact_ids=ids)),
        "deals": pipeline_selectors.deals_of_contacts(contact_ids=ids).count(),
        "merges": ContactMerge.objects.filter(winner_id__in=ids).count(),
        "emails": mail_erasure.person_mail_count(
            contact_ids=ids,
            addresses=[
                *(i.value for i in identity_erasure.person_identities(contact_ids=ids)),
                *Contact.objects.filter(pk__in=ids).exclude(email="").values_list("email", flat=True),
            ],
        ),
    }


def erase_confirmation_answers(contact: Contact) -> set[str]:
    """What the Admin may type to confirm: the email or the full name (a visitor's label if it
    has neither), compared ignoring case and surrounding spaces."""
    answers = {v.strip().lower() for v in (contact.email or "", contact.full_name) if v and v.strip()}
    return answers or {contact.display_name.strip().lower()}
