"""Reads for the Unmatched inbox and the never-log list."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import F, Prefetch, Q, QuerySet

from core.errors import NotFound
from core.pagination import KeysetPage, keyset_page
from mail.models import EmailParticipant, MailboxMessage, NeverLogEntry


def unmatched_page(*, user: AbstractBaseUser, cursor: str | None, size: int = 25) -> KeysetPage:
    """The user's own mailboxes' copies nothing could be linked to, newest first (the
    (mailbox, triage) index narrows to the pending ones, the message's sent_at orders them)."""
    copies = (
        MailboxMessage.objects.filter(mailbox__owner=user, triage=MailboxMessage.Triage.PENDING)
        .select_related("mailbox", "message")
        .prefetch_related(
            Prefetch("message__participants", queryset=EmailParticipant.objects.order_by("role", "pk"))
        )
    )
    return keyset_page(copies, key=F("message__sent_at"), descending=True, cursor=cursor, size=size)


def unmatched_copy_get(*, user: AbstractBaseUser, copy_id: int) -> MailboxMessage:
    """A copy in one of the user's own mailboxes; anyone else's is NotFound (not Forbidden: a
    private message's existence does not leak)."""
    copy = MailboxMessage.objects.filter(pk=copy_id, mailbox__owner=user).select_related("message").first()
    if copy is None:
        raise NotFound("No such message in your mailboxes.")
    return copy


def unmatched_count(*, user: AbstractBaseUser) -> int:
    return MailboxMessage.objects.filter(mailbox__owner=user, triage=MailboxMessage.Triage.PENDING).count()


def never_log_list(*, user: AbstractBaseUser) -> QuerySet[NeverLogEntry]:
    """The workspace's entries and the user's own (another user's personal list is theirs)."""
    return NeverLogEntry.objects.filter(Q(owner__isnull=True) | Q(owner=user)).order_by(
        F("owner_id").asc(nulls_first=True), "value"
    )
