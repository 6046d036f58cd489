"""The Unmatched inbox and the never-log list: what a rep does with mail the matcher could not
place (link it to a contact, create the contact, ignore it), and whose mail is never logged.

Only a mailbox's owner triages its copies: private mail is theirs alone (a copy of another's
mailbox answers NotFound, not Forbidden, so its existence does not leak)."""

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from accounts.roles import is_admin
from contacts import permissions as contact_permissions
from contacts import services as contact_services
from contacts.models import Contact
from core.errors import Conflict, DomainError, Forbidden, NotFound
from mail.models import EmailLink, EmailParticipant, LinkReason, MailboxMessage, NeverLogEntry
from mail.services.matching import address_normalise, display_name_split, messages_link

CHOOSE_ADDRESS = "Choose one of the message's addresses."
COLLEAGUE = "That address is a colleague's, not a customer's."
BAD_VALUE = "Enter an email address or a domain such as example.com."


def _own_copy(*, copy_id: int, actor: AbstractBaseUser) -> MailboxMessage:
    copy = (
        MailboxMessage.objects.select_for_update(of=("self",))
        .select_related("mailbox", "message")
        .filter(pk=copy_id, mailbox__owner=actor)
        .first()
    )
    if copy is None:
        raise NotFound("No such message in your mailboxes.")
    return copy


@transaction.atomic
def unmatched_link_contact(*, copy_id: int, contact: Contact, actor: AbstractBaseUser) -> MailboxMessage:
    """Put a message on a contact by hand (and on the contact's company): the timeline says
    "Linked by hand". The contact must be one the rep may read; a merged-away contact means its
    survivor."""
    contact_permissions.ensure_can_read(actor)
    copy = _own_copy(copy_id=copy_id, actor=actor)
    while contact.merged_into_id is not None:
        contact = Contact.objects.get(pk=contact.merged_into_id)
    links = [
        EmailLink(
            message=copy.message,
            contact=contact,
            sent_at=copy.message.sent_at,
            reason=LinkReason.MANUAL,
            via=actor.get_username(),
        )
    ]
    if contact.company_id is not None:
        links.append(
            EmailLink(
                message=copy.message,
                company_id=contact.company_id,
                sent_at=copy.message.sent_at,
                reason=LinkReason.COMPANY,
                via="",
            )
        )
    EmailLink.objects.bulk_create(links, ignore_conflicts=True)
    copy.triage = MailboxMessage.Triage.LINKED
    copy.save(update_fields=["triage"])
    return copy


@transaction.atomic
def unmatched_contact_create(*, copy_id: int, address: str, actor: AbstractBaseUser) -> Contact:
    """Create a contact for one of the message's participants, then match the message again: it
    lands on the new contact by address, with the contact's company and deals as any other."""
    copy = _own_copy(copy_id=copy_id, actor=actor)
    address = address_normalise(address)
    participant = (
        EmailParticipant.objects.filter(message=copy.message, address=address).order_by("pk").first()
        if address
        else None
    )
    if participant is None:
        raise DomainError(CHOOSE_ADDRESS, fields={"address": [CHOOSE_ADDRESS]})
    if participant.user_id is not None:
        raise DomainError(COLLEAGUE, fields={"address": [COLLEAGUE]})
    contact = contact_services.contact_create(
        actor=actor, email=address, **display_name_split(participant.name)
    )
    messages_link(mailbox=copy.mailbox, messages=[copy.message])
    return contact


@transaction.atomic
def unmatched_ignore(*, copy_id: int, actor: AbstractBaseUser) -> MailboxMessage:
    """Take a message out of the Unmatched inbox; it stays private to the mailbox's owner."""
    copy = _own_copy(copy_id=copy_id, actor=actor)
    copy.triage = MailboxMessage.Triage.IGNORED
    copy.save(update_fields=["triage"])
    return copy


def never_log_value_clean(value: str) -> str:
    """An address ("ceo@example.com") or a domain ("example.com", "@example.com"), lower-cased."""
    value = (value or "").strip().lower()
    if "@" in value.lstrip("@"):
        address = address_normalise(value)
        try:
            validate_email(address)
        except ValidationError:
            address = ""
        if not address:
            raise DomainError(BAD_VALUE, fields={"value": [BAD_VALUE]})
        return address
    domain = value.lstrip("@").rstrip(".")
    labels = domain.split(".")
    if len(labels) < 2 or not all(labels) or any(not (c.isalnum() or c == "-") for c in "".join(labels)):
        raise DomainError(BAD_VALUE, fields={"value": [BAD_VALUE]})
    return domain


@transaction.atomic
def never_log_add(*, value: str, actor: AbstractBaseUser, workspace: bool = False) -> NeverLogEntry:
    """Add an address or domain whose mail is never logged from now on: for the actor's own
    mailboxes, or (Admins) for everyone's and the dropbox. Mail already logged stays: removing
    it is an erasure, which the privacy tools do with an audit trail."""
    if workspace and not is_admin(actor):
        raise Forbidden("Only an Admin may change the workspace's never-log list.")
    value = never_log_value_clean(value)
    try:
        with transaction.atomic():
            return NeverLogEntry.objects.create(value=value, owner=None if workspace else actor)
    except IntegrityError as exc:
        raise Conflict(f"“{value}” is already on the list.", code="duplicate") from exc


@transaction.atomic
def never_log_remove(*, entry_id: int, actor: AbstractBaseUser) -> NeverLogEntry:
    entry = NeverLogEntry.objects.select_for_update().filter(pk=entry_id).first()
    if entry is None or (entry.owner_id is not None and entry.owner_id != actor.pk):
        raise NotFound("No such never-log entry.")
    if entry.owner_id is None and not is_admin(actor):
        raise Forbidden("Only an Admin may change the workspace's never-log list.")
    entry.delete()
    return entry
