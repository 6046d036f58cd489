"""Rep email: mailboxes, stored messages with their participants, links and attachments, threads
and sends, written directly as the sync and the sender leave them (the view side reads them)."""

import datetime as dt
import hashlib
import itertools

from django.core.files.base import ContentFile

from mail import crypto
from mail.models import (
    Direction,
    EmailAttachment,
    EmailLink,
    EmailMessage,
    EmailParticipant,
    EmailThread,
    LinkReason,
    Mailbox,
    MailboxMessage,
    OutgoingEmail,
    ParticipantRole,
)

_seq = itertools.count(1)

# Messages without an explicit sent_at are a minute apart from here, in creation order.
MAIL_T0 = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)


def make_mailbox(owner, **fields) -> Mailbox:
    """A personal IMAP mailbox of `owner` (nothing listens on its host: the view side never
    connects)."""
    fields.setdefault("email_address", owner.email or f"{owner.username}@ourco.test")
    fields.setdefault("username", owner.username)
    return Mailbox.objects.create(
        owner=owner, imap_host="127.0.0.1", secret_encrypted=crypto.secret_encrypt("pw"), **fields
    )


def make_sending_mailbox(owner, smtp_server, **fields) -> Mailbox:
    """A personal mailbox of `owner` that sends through the suite's real SMTP server
    (tests/mail/smtp_server.py: any login with its password; Dovecot takes that password too)."""
    fields.setdefault("email_address", owner.email or f"{owner.username}@ourco.test")
    fields.setdefault("username", smtp_server.username)
    fields.setdefault("imap_host", "127.0.0.1")
    fields.setdefault("unknown_policy", "never")
    return Mailbox.objects.create(
        owner=owner,
        smtp_host="127.0.0.1",
        smtp_port=smtp_server.port,
        smtp_security="none",
        secret_encrypted=crypto.secret_encrypt(smtp_server.password),
        **fields,
    )


def make_thread(*, subject: str = "Hello") -> EmailThread:
    return EmailThread.objects.create(subject=subject)


def _address(entry) -> tuple[str, str]:
    """ "a@b.test" or ("a@b.test", "Name")."""
    if isinstance(entry, tuple):
        return entry[0].strip().lower(), entry[1]
    return entry.strip().lower(), ""


def make_message(
    mailbox: Mailbox | None = None,
    *,
    sender="someone@elsewhere.test",
    to=(),
    cc=(),
    direction: str = Direction.INCOMING,
    thread: EmailThread | None = None,
    sent_at: dt.datetime | None = None,
    subject: str = "Hello",
    text_body: str = "",
    html_body: str = "",
    snippet: str | None = None,
    contacts=(),
    **fields,
) -> EmailMessage:
    """A stored message with its From/To/Cc participants (an address, or (address, name)), a copy
    in `mailbox` (folder INBOX, or "" for a sent one) and participant.contact set for `contacts`
    whose email is among the addresses. No links: add them with `make_link`."""
    n = next(_seq)
    thread = thread or make_thread(subject=subject)
    sent_at = sent_at or MAIL_T0 + dt.timedelta(minutes=n)
    from_address, from_name = _address(sender)
    message = EmailMessage.objects.create(
        message_key=fields.pop("message_key", f"m{n}@mail.test"),
        header_message_id=fields.pop("header_message_id", f"<m{n}@mail.test>"),
        thread=thread,
        subject=subject,
        from_address=from_address,
        from_name=from_name,
        sent_at=sent_at,
        text_body=text_body,
        html_body=html_body,
        snippet=(text_body[:200] if snippet is None else snippet),
        size_bytes=len(text_body) + len(html_body),
        **fields,
    )
    by_email = {c.email.lower(): c for c in contacts if c.email}
    rows = [
        EmailParticipant(
            message=message,
            role=role,
            address=address,
            name=name,
            contact=by_email.get(address),
        )
        for role, entries in (
            (ParticipantRole.FROM, [sender]),
            (ParticipantRole.TO, to),
            (ParticipantRole.CC, cc),
        )
        for address, name in map(_address, entries)
    ]
    EmailParticipant.objects.bulk_create(rows)
    if mailbox is not None:
        MailboxMessage.objects.create(
            mailbox=mailbox,
            message=message,
            folder="" if direction == Direction.OUTGOING else "INBOX",
            uid=None if direction == Direction.OUTGOING else n,
            direction=direction,
            triage=MailboxMessage.Triage.PENDING,
        )
    if thread.last_message_at is None or thread.last_message_at < sent_at:
        EmailThread.objects.filter(pk=thread.pk).update(last_message_at=sent_at)
    return message


def make_link(
    message: EmailMessage,
    *,
    contact=None,
    company=None,
    deal=None,
    reason: str = LinkReason.ADDRESS,
    via: str = "",
) -> EmailLink:
    """A link to exactly one record; the message's copies are then LINKED (as matching leaves them)."""
    link = EmailLink.objects.create(
        message=message,
        contact=contact,
        company=company,
        deal=deal,
        sent_at=message.sent_at,
        reason=reason,
        via=via,
    )
    MailboxMessage.objects.filter(message=message, triage=MailboxMessage.Triage.PENDING).update(
        triage=MailboxMessage.Triage.LINKED
    )
    return link


def make_attachment(
    message: EmailMessage,
    *,
    filename: str = "quote.pdf",
    content: bytes = b"%PDF-1.4 quote",
    content_type: str = "application/pdf",
    skipped_reason: str = "",
    content_id: str = "",
) -> EmailAttachment:
    """An attachment stored content-addressed (the same bytes in two messages share one file);
    with `skipped_reason`, the file was not kept."""
    digest = hashlib.sha256(content).hexdigest()
    attachment = EmailAttachment(
        message=message,
        filename=filename,
        content_type=content_type,
        size_bytes=len(content),
        sha256=digest,
        skipped_reason=skipped_reason,
        content_id=content_id,
    )
    if not skipped_reason:
        existing = EmailAttachment.objects.filter(sha256=digest).exclude(file="").first()
        if existing is not None:
            attachment.file.name = existing.file.name
        else:
            attachment.file.save(digest, ContentFile(content), save=False)
    attachment.save()
    EmailMessage.objects.filter(pk=message.pk).update(has_attachments=True)
    return attachment


def make_outgoing(mailbox: Mailbox, *, message: EmailMessage | None = None, **fields) -> OutgoingEmail:
    """A send from `mailbox` by its owner; with `message`, the stored message it became."""
    n = next(_seq)
    fields.setdefault("to", ["someone@elsewhere.test"])
    fields.setdefault("subject", message.subject if message else "Hello")
    fields.setdefault("send_at", message.sent_at if message else MAIL_T0)
    return OutgoingEmail.objects.create(
        mailbox=mailbox,
        sender=mailbox.owner,
        header_message_id=message.header_message_id if message else f"<send{n}@ourco.test>",
        tracking_token=f"token-{n}",
        message=message,
        status="sent" if message else "scheduled",
        sent_at=message.sent_at if message else None,
        **fields,
    )
