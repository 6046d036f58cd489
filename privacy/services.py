"""Erase person: request (Admin) and the task's work.

The person is the contact plus every tombstone merged into it; their identifiers are all their
Identity values and the contacts' emails and phones. The work is idempotent and resumable: each
step deletes what is still there, in batches with their own commits, and adds its counts to the
request; a redelivered or re-run task starts over and finds less to do. The contacts go last, in
the transaction that marks the request done, so a run that dies earlier still finds the person.
"""

import logging
from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts.services import notifications
from contacts import selectors as contact_selectors
from contacts import services as contact_services
from contacts.models import Contact
from core.db import lock_rows
from events.services import erasure as event_erasure
from events.services import suppression
from identity.services import erasure as identity_erasure
from mail.services import erasure as mail_erasure
from pipeline import selectors as pipeline_selectors
from privacy.models import ErasureRequest, ErasureStatus
from privacy.permissions import ensure_can_erase
from privacy.tasks import person_erase_task
from segments import services as segment_services

logger = logging.getLogger(__name__)

EVENT_BATCH = event_erasure.DELETE_BATCH
# The person's events read at a time (deleted in EVENT_BATCH transactions, oldest received first):
# each read sorts all their projection rows, so fewer, larger reads.
EVENT_FETCH = 10 * EVENT_BATCH
# A request in one of these is still the person's pending request: asking again returns it.
OPEN_STATUSES = [ErasureStatus.QUEUED, ErasureStatus.RUNNING, ErasureStatus.FAILED]


@transaction.atomic
def person_erase_request(*, actor: AbstractBaseUser, contact: Contact) -> ErasureRequest:
    """Queue the erasure of the person `contact` belongs to (a tombstone means its survivor).
    Asking again while one is pending returns the pending request."""
    ensure_can_erase(actor)
    contact = contact_selectors.contact_surviving(contact=contact)
    pending = lock_rows(ErasureRequest.objects.filter(contact=contact, status__in=OPEN_STATUSES)).first()
    if pending is not None:
        request = pending
    else:
        request = ErasureRequest.objects.create(contact=contact, requested_by=actor)
    transaction.on_commit(lambda: _enqueue(request.pk))
    return request


@transaction.atomic
def person_erase_retry(*, actor: AbstractBaseUser, request_id: int) -> bool:
    """Queue a failed erasure again; it resumes where the failed run stopped. Returns False when
    the request is no longer failed (retried already, running, or done): nothing to do."""
    ensure_can_erase(actor)
    updated = ErasureRequest.objects.filter(pk=request_id, status=ErasureStatus.FAILED).update(
        status=ErasureStatus.QUEUED
    )
    if updated:
        transaction.on_commit(lambda: _enqueue(request_id))
    return bool(updated)


def _enqueue(request_id: int) -> None:
    person_erase_task.delay(request_id)


def _identifiers(contacts: Iterable[Contact], contact_ids: list[int]) -> list[str]:
    values = set(identity_erasure.person_identifier_values(contact_ids=contact_ids))
    for contact in contacts:
        values.update(v for v in (contact.email, contact.phone) if v)
    return sorted(values)


def _record(request_id: int, counts: dict[str, int]) -> None:
    """Add a step's counts to the request (its own short transaction, so progress survives)."""
    counts = {label: n for label, n in counts.items() if n}
    if not counts:
        return
    with transaction.atomic():
        request = ErasureRequest.objects.select_for_update().get(pk=request_id)
        for label, n in counts.items():
            request.deleted[label] = request.deleted.get(label, 0) + n
        request.save(update_fields=["deleted"])


def _claim(request_id: int) -> ErasureRequest | None:
    with transaction.atomic():
        request = ErasureRequest.objects.select_for_update().filter(pk=request_id).first()
        if request is None or request.status == ErasureStatus.DONE:
            return None
        request.status = ErasureStatus.RUNNING
        request.started_at = request.started_at or timezone.now()
        request.failure = ""
        request.save(update_fields=["status", "started_at", "failure"])
        return request


def person_erase(*, request_id: int) -> ErasureRequest | None:
    """Do the erasure. Safe to run twice, concurrently or after a crash; a done or deleted request
    is left alone. A failure marks the request failed (the class name only: exception messages
    can quote the data) and the next run resumes."""
    request = _claim(request_id)
    if request is None:
        return ErasureRequest.objects.filter(pk=request_id).first()
    try:
        _erase(request)
    except Exception as exc:
        logger.exception("erasure %s failed", request.reference)
        ErasureRequest.objects.filter(pk=request.pk).update(
            status=ErasureStatus.FAILED, failure=type(exc).__name__[:200]
        )
        raise
    return ErasureRequest.objects.get(pk=request.pk)


def _erase(request: ErasureRequest) -> None:
    contact = Contact.objects.filter(pk=request.contact_id).first() if request.contact_id else None
    if contact is None:
        # The contact went already (deleted by hand, or an earlier run finished the last step).
        _finish(request.pk)
        return
    contact_ids = contact_selectors.contact_person_ids(contact=contact)
    contacts = list(Contact.objects.filter(pk__in=contact_ids))
    identifiers = _identifiers(contacts, contact_ids)
    emails = sorted({c.email for c in contacts if c.email})
    # First: from now on (give or take the suppression cache) their new events are dropped.
    suppression.suppression_add(values=identifiers)

    while events := identity_erasure.person_events(contact_ids=contact_ids, limit=EVENT_FETCH):
        _record(
            request.pk,
            event_erasure.events_delete(event_ids=[e for e, _ in events], received_at=[r for _, r in events]),
        )
    _record(request.pk, event_erasure.events_delete_for_identifiers(identifiers=identifiers))
    _record(request.pk, event_erasure.rejected_events_delete_mentioning(identifiers=identifiers))
    _record(
        request.pk, {"contacts.FieldChange": contact_services.field_changes_delete(contact_ids=contact_ids)}
    )
    _record(
        request.pk,
        {"contacts.ImportRowError": contact_services.import_row_errors_delete_mentioning(values=emails)},
    )
    deals = list(pipeline_selectors.deals_of_contacts(contact_ids=contact_ids))
    names = sorted({c.full_name for c in contacts if c.full_name})
    _record(
        request.pk,
        {
            "accounts.Notification": notifications.notifications_delete_matching(
                urls=[reverse("contacts:contact_detail", args=[pk]) for pk in contact_ids],
                texts=identifiers,
                linked_urls=[reverse("pipeline:deal_detail", args=[d.pk]) for d in deals],
                linked_texts=names,
            )
        },
    )
    _record(
        request.pk,
        {
            "segments.WebhookDelivery": segment_services.webhook_deliveries_delete_for_contacts(
                contact_ids=contact_ids, emails=emails
            )
        },
    )
    _record(
        request.pk,
        {
            "identity.IdentityWarning": identity_erasure.identity_warnings_delete(
                contact_ids=contact_ids, identifiers=identifiers
            )
        },
    )
    _record(
        request.pk,
        {"identity.SplitRule": identity_erasure.split_rules_delete(identifiers=[*identifiers, *emails])},
    )
    _record(
        request.pk, {"contacts.ContactMerge": contact_services.contact_merges_delete(contact_ids=contact_ids)}
    )
    # Their email: messages that are theirs alone whole, their part of the others (mail's rules).
    _record(
        request.pk,
        mail_erasure.person_mail_erase(contact_ids=contact_ids, addresses=[*identifiers, *emails]),
    )
    late = _delete_contacts(request.pk, contact=contact)
    # Events from identifiers that arrived while the contacts were locked (or within another
    # process's suppression cache) have nobody to be projected onto now; sweep them by value.
    _record(
        request.pk, event_erasure.events_delete_for_identifiers(identifiers=sorted({*identifiers, *late}))
    )


def _delete_contacts(request_id: int, *, contact: Contact) -> list[str]:
    """Last step, one transaction: lock the person's contacts (the stitching worker locks contacts
    too, so it cannot add to them meanwhile), delete what it attached since the first pass, then
    the contacts (cascading to identities, projections, rollups, memberships, activities, tasks;
    deals keep their row, detached), and mark the request done. Returns the identifiers found."""
    with transaction.atomic():
        contact_ids = contact_selectors.contact_person_ids(contact=contact)
        contacts = list(lock_rows(Contact.objects.filter(pk__in=contact_ids)))
        identifiers = _identifiers(contacts, contact_ids)
        suppression.suppression_add(values=identifiers)
        counts: dict[str, int] = {}
        while events := identity_erasure.person_events(contact_ids=contact_ids, limit=EVENT_FETCH):
            deleted = event_erasure.events_delete(
                event_ids=[e for e, _ in events], received_at=[r for _, r in events]
            )
            for label, n in deleted.items():
                counts[label] = counts.get(label, 0) + n
        for label, n in contact_services.contact_delete(contact=contact, actor=None).items():
            counts[label] = counts.get(label, 0) + n
        _record(request_id, counts)
        _finish(request_id)
    return identifiers


def _finish(request_id: int) -> None:
    ErasureRequest.objects.filter(pk=request_id).update(
        status=ErasureStatus.DONE, contact=None, finished_at=timezone.now(), failure=""
    )
