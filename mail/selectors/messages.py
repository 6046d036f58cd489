"""Reads of stored mail for the record timelines, the thread view and attachment downloads.

Who sees a message: anyone who may read the CRM records (contacts.permissions.can_read) sees the
messages linked to a record, since the record's timeline shows them; a message linked to nothing
(private, unmatched or ignored mail) is seen only by the owner of a mailbox holding a copy. Anything
else answers NotFound, never Forbidden, so private mail does not reveal that it exists.
"""

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import (
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    Subquery,
    Value,
    prefetch_related_objects,
)
from django.db.models.fields.tuple_lookups import Tuple, TupleLessThan
from django.db.models.functions import Coalesce

from contacts.permissions import can_read, ensure_can_read
from core.errors import NotFound
from mail.models import (
    Direction,
    EmailAttachment,
    EmailLink,
    EmailMessage,
    EmailParticipant,
    LinkReason,
    MailboxMessage,
    ParticipantRole,
)

TIMELINE_TEMPLATE = "mail/_timeline_email.html"
RECORDS = ("contact", "company", "deal")


@dataclass
class RecordMessage:
    """A message on one record's timeline, with why it is there. `kind`, `at`, `key` and
    `template` are what the timelines of identity and pipeline sort, page and render by
    (settings.TIMELINE_SOURCE_HOOKS)."""

    message: EmailMessage
    reason: str
    via: str
    attachment_count: int
    sent: bool  # a workspace mailbox sent it (its copy there is outgoing)
    kind: str = "email"
    template: str = TIMELINE_TEMPLATE

    @property
    def at(self) -> datetime:
        return self.message.sent_at

    @property
    def key(self) -> int:
        return self.message.pk

    @property
    def reason_label(self) -> str:
        return LinkReason(self.reason).label if self.reason in LinkReason.values else self.reason

    @property
    def direction_label(self) -> str:
        return Direction.OUTGOING.label if self.sent else Direction.INCOMING.label

    @property
    def to(self) -> list[EmailParticipant]:
        return [p for p in self.message.participants.all() if p.role == ParticipantRole.TO]

    @property
    def cc(self) -> list[EmailParticipant]:
        return [p for p in self.message.participants.all() if p.role == ParticipantRole.CC]


def _listed_attachments() -> Subquery:
    """How many downloads a message lists (inline cid: parts are part of the body, not files)."""
    counts = (
        EmailAttachment.objects.filter(message_id=OuterRef("message_id"), content_id="")
        .order_by()
        .values("message_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counts, output_field=IntegerField()), Value(0))


def _sent() -> Exists:
    return Exists(MailboxMessage.objects.filter(message_id=OuterRef("pk"), direction=Direction.OUTGOING))


def _participants() -> Prefetch:
    return Prefetch("participants", queryset=EmailParticipant.objects.order_by("role", "pk"))


def record_messages(
    *,
    user: AbstractBaseUser,
    contact=None,
    company=None,
    deal=None,
    until: datetime | None = None,
    before: tuple[datetime, int] | None = None,
    limit: int,
) -> list[RecordMessage]:
    """The messages linked to one record, newest first (by sent_at, then message id), at most
    `limit`: those sent at or before `until`, and (a cursor of this list's own) strictly before
    the `before` = (sent_at, message id) row. Two queries: the links with their messages, then
    the participants. The links are read in the order of the record's timeline index
    ((record, -sent_at, -message), the link's copy of the message's sent_at), stopping after
    `limit` rows: a page costs the same whatever the record's mail."""
    ensure_can_read(user)
    records = {"contact": contact, "company": company, "deal": deal}
    given = [(name, record) for name, record in records.items() if record is not None]
    if len(given) != 1:
        raise ValueError("exactly one of contact, company, deal")
    name, record = given[0]
    links = EmailLink.objects.filter(**{f"{name}_id": getattr(record, "pk", record)})
    if until is not None:
        links = links.filter(sent_at__lte=until)
    if before is not None:
        # A row comparison, so the index scan starts at the cursor (an OR of the two columns
        # would be a filter over the rows above it).
        links = links.filter(TupleLessThan(Tuple(F("sent_at"), F("message_id")), before))
    links = (
        links.select_related("message")
        .annotate(
            attachment_count=_listed_attachments(),
            sent=Exists(
                MailboxMessage.objects.filter(message_id=OuterRef("message_id"), direction=Direction.OUTGOING)
            ),
        )
        .order_by("-sent_at", "-message_id")
    )
    rows = list(links[:limit])
    messages = [link.message for link in rows]
    if messages:
        prefetch_related_objects(messages, _participants())
    return [
        RecordMessage(
            message=link.message,
            reason=link.reason,
            via=link.via,
            attachment_count=link.attachment_count,
            sent=link.sent,
        )
        for link in rows
    ]


def timeline_entries(
    *,
    user: AbstractBaseUser,
    contact_id: int | None = None,
    company_id: int | None = None,
    deal_id: int | None = None,
    until: datetime | None = None,
    limit: int,
) -> list[RecordMessage]:
    """The settings.TIMELINE_SOURCE_HOOKS provider: a record's email for the contact timeline
    (identity) and the company and deal feeds (pipeline)."""
    return record_messages(
        user=user, contact=contact_id, company=company_id, deal=deal_id, until=until, limit=limit
    )


def _visible(user: AbstractBaseUser) -> Q:
    """Messages `user` may open: one of their mailboxes holds a copy, or (for a CRM reader) it is
    on a record's timeline."""
    owned = Exists(MailboxMessage.objects.filter(message_id=OuterRef("pk"), mailbox__owner_id=user.pk))
    if not can_read(user):
        return Q(owned)
    return Q(owned) | Q(Exists(EmailLink.objects.filter(message_id=OuterRef("pk"))))


def message_get(*, user: AbstractBaseUser, pk: int) -> EmailMessage:
    message = EmailMessage.objects.filter(_visible(user), pk=pk).select_related("thread").first()
    if message is None:
        raise NotFound("No such message.")
    return message


def thread_messages(*, user: AbstractBaseUser, thread_id: int) -> list[EmailMessage]:
    """The thread's messages `user` may open, oldest first, with their participants, listed
    attachments and links; NotFound when there is none (another's private thread included)."""
    messages = list(
        EmailMessage.objects.filter(_visible(user), thread_id=thread_id)
        .select_related("thread")
        .annotate(sent=_sent())
        .prefetch_related(
            _participants(),
            Prefetch(
                "attachments",
                queryset=EmailAttachment.objects.filter(content_id="").order_by("pk"),
                to_attr="listed_attachments",
            ),
            Prefetch("links", queryset=EmailLink.objects.select_related(*RECORDS).order_by("pk")),
        )
        .order_by("sent_at", "pk")
    )
    if not messages:
        raise NotFound("No such thread.")
    return messages


def attachment_get(*, user: AbstractBaseUser, pk: int) -> EmailAttachment:
    """An attachment of a message `user` may open, with its file kept; NotFound otherwise (a
    skipped attachment has no file to serve)."""
    visible = EmailMessage.objects.filter(_visible(user), pk=OuterRef("message_id"))
    kept = EmailAttachment.objects.filter(skipped_reason="").exclude(file="")
    attachment = kept.filter(Exists(visible), pk=pk).first()
    if attachment is None:
        raise NotFound("No such attachment.")
    return attachment
