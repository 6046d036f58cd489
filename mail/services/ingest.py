"""Parsed messages into the tables, a batch at a time: the one write path for synced and
dropbox mail (a send stores its own message, mail.services.sending, through `message_rows_store`).

A batch is a few hundred messages of one mailbox folder: a handful of statements whatever its
size (messages, participants, copies, attachments each one bulk INSERT … ON CONFLICT DO NOTHING),
so the sync's cost is the parse, not round trips. Idempotent by message key: a message already
stored (another folder, another mailbox, a re-run after a crash) gains only this mailbox's copy.
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Max, OuterRef, Subquery
from django.db.models.functions import Lower

from mail.models import (
    Direction,
    EmailAttachment,
    EmailMessage,
    EmailParticipant,
    EmailThread,
    LinkReason,
    Mailbox,
    MailboxKind,
    MailboxMessage,
    ParticipantRole,
)
from mail.parsing import ParsedMessage
from mail.services.matching import NeverLogRules, messages_link, never_log_rules


@dataclass(frozen=True, slots=True)
class IncomingItem:
    parsed: ParsedMessage
    folder: str = ""
    uid: int | None = None


@dataclass(slots=True)
class StoreResult:
    stored: int = 0  # new messages
    copies: int = 0  # new copies in this mailbox (new messages included)
    never_logged: int = 0
    skipped: list[tuple[IncomingItem, str]] = field(default_factory=list)  # (item, reason)


def _participants(parsed: ParsedMessage) -> list[tuple[str, str, str]]:
    rows = []
    if parsed.sender is not None:
        rows.append((ParticipantRole.FROM, parsed.sender.address, parsed.sender.name))
    for role, addresses in (
        (ParticipantRole.TO, parsed.to),
        (ParticipantRole.CC, parsed.cc),
        (ParticipantRole.BCC, parsed.bcc),
    ):
        rows += [(role, a.address, a.name) for a in addresses]
    return rows


def _user_ids_by_email() -> dict[str, int]:
    users = get_user_model().objects.exclude(email="").annotate(lower=Lower("email"))
    return dict(users.values_list("lower", "pk"))


def _own_addresses(mailbox: Mailbox) -> set[str]:
    own = {mailbox.email_address.strip().lower()}
    if mailbox.owner is not None and mailbox.owner.email:
        own.add(mailbox.owner.email.strip().lower())
    return own


def _dropbox_original(item: IncomingItem, *, users: dict[str, int]) -> tuple[ParsedMessage | None, str]:
    """What a dropbox message logs: a forward's original, or the message itself when a rep BCC'd
    it. The sender must be a user (anyone could write to the address otherwise)."""
    parsed = item.parsed
    if parsed.sender is None or parsed.sender.address not in users:
        shown = parsed.sender.address if parsed.sender else "no sender"
        return None, f"Sent to the dropbox by {shown}, who is not a user of this workspace."
    if parsed.auth_failure:
        # A user's address in From, refused by the receiving server's checks: a forgery would
        # otherwise log anyone's mail as a rep's.
        return None, (
            f"From {parsed.sender.address}, but the receiving server could not verify that sender "
            f"({parsed.auth_failure}): not logged as a user's."
        )
    return (parsed.forwarded or parsed), ""


def _thread_for(parsed: ParsedMessage, *, known: dict[str, int]) -> int | None:
    for ref in [parsed.in_reply_to, *reversed(parsed.references)]:
        if ref and (thread_id := known.get(_key(ref))) is not None:
            return thread_id
    return None


def _key(header_id: str) -> str:
    from mail.headers import message_key

    return message_key(header_message_id=header_id)


def _store_attachments(message: EmailMessage, parsed: ParsedMessage, *, cap: int) -> list[EmailAttachment]:
    rows = []
    for attachment in parsed.attachments:
        digest = hashlib.sha256(attachment.payload).hexdigest()
        row = EmailAttachment(
            message=message,
            filename=attachment.filename,
            content_type=attachment.content_type,
            size_bytes=len(attachment.payload),
            sha256=digest,
            content_id=attachment.content_id,
        )
        if len(attachment.payload) > cap:
            row.skipped_reason = f"Not kept: {len(attachment.payload):,} bytes is over the {cap:,}-byte cap."
        else:
            path = f"mail/attachments/{digest[:2]}/{digest}"
            if not default_storage.exists(path):  # content-addressed: stored once
                default_storage.save(path, ContentFile(attachment.payload))
            row.file.name = path
        rows.append(row)
    return rows


@transaction.atomic
def messages_store(
    *, mailbox: Mailbox, items: Sequence[IncomingItem], rules: NeverLogRules | None = None
) -> StoreResult:
    """Store a batch of one mailbox's messages and link them (mail.services.matching). Messages
    with a participant on the never-log list are not stored at all."""
    result = StoreResult()
    rules = rules or never_log_rules(owner_id=mailbox.owner_id)
    users = _user_ids_by_email()
    own = _own_addresses(mailbox)
    dropbox = mailbox.kind == MailboxKind.DROPBOX

    accepted: list[tuple[IncomingItem, ParsedMessage]] = []
    for item in items:
        parsed = item.parsed
        if dropbox:
            original, reason = _dropbox_original(item, users=users)
            if original is None:
                result.skipped.append((item, reason))
                continue
            parsed = original
        addresses = {address for _, address, _ in _participants(parsed)} - own
        if rules.blocked(addresses):
            result.never_logged += 1
            continue
        accepted.append((item, parsed))
    if not accepted:
        return result

    # One row per key: the first copy in the batch wins (a duplicate Message-ID is one message).
    by_key: dict[str, tuple[IncomingItem, ParsedMessage]] = {}
    for item, parsed in accepted:
        by_key.setdefault(parsed.message_key, (item, parsed))
    existing = dict(EmailMessage.objects.filter(message_key__in=by_key).values_list("message_key", "pk"))

    # Threads: a reply joins its parent's thread (stored before, or earlier in this batch).
    ref_keys = {
        _key(ref) for _, parsed in by_key.values() for ref in [parsed.in_reply_to, *parsed.references] if ref
    }
    thread_of = dict(
        EmailMessage.objects.filter(message_key__in=ref_keys).values_list("message_key", "thread_id")
    )
    new = sorted(
        ((item, parsed) for key, (item, parsed) in by_key.items() if key not in existing),
        key=lambda pair: pair[1].sent_at,
    )
    # A message with no known parent starts a thread; the threads are created in one INSERT, so
    # a parent new in this batch hands its children a placeholder (-1, -2, ...) resolved below.
    fresh: list[EmailThread] = []
    for _item, parsed in new:
        thread_id = _thread_for(parsed, known=thread_of)
        if thread_id is None:
            fresh.append(EmailThread(subject=parsed.subject, last_message_at=parsed.sent_at))
            thread_id = -len(fresh)
        thread_of[parsed.message_key] = thread_id
    if fresh:
        EmailThread.objects.bulk_create(fresh, batch_size=500)
        thread_of = {k: fresh[-t - 1].pk if t < 0 else t for k, t in thread_of.items()}
    messages: list[EmailMessage] = []
    for _item, parsed in new:
        thread_id = thread_of[parsed.message_key]
        messages.append(
            EmailMessage(
                message_key=parsed.message_key,
                header_message_id=parsed.header_message_id,
                in_reply_to=parsed.in_reply_to,
                references=parsed.references,
                thread_id=thread_id,
                subject=parsed.subject,
                from_address=parsed.sender.address if parsed.sender else "",
                from_name=parsed.sender.name if parsed.sender else "",
                sent_at=parsed.sent_at,
                text_body=parsed.text_body,
                html_body=parsed.html_body,
                snippet=parsed.snippet,
                size_bytes=parsed.size_bytes,
                has_attachments=bool(parsed.attachments),
                auth_failure=parsed.auth_failure[:200],
            )
        )
    # ON CONFLICT: another mailbox's sync may store the same message between our read and here.
    EmailMessage.objects.bulk_create(messages, ignore_conflicts=True, batch_size=500)
    ids = dict(EmailMessage.objects.filter(message_key__in=by_key).values_list("message_key", "pk"))
    created = {key for key in ids if key not in existing}
    result.stored = len(created)

    participants, attachments = [], []
    stored_messages = {
        m.message_key: m for m in EmailMessage.objects.filter(pk__in=[ids[k] for k in created])
    }
    for key in created:
        _item, parsed = by_key[key]
        for role, address, name in _participants(parsed):
            participants.append(
                EmailParticipant(
                    message_id=ids[key], role=role, address=address, name=name, user_id=users.get(address)
                )
            )
        attachments += _store_attachments(stored_messages[key], parsed, cap=mailbox.attachment_max_bytes)
    EmailParticipant.objects.bulk_create(participants, ignore_conflicts=True, batch_size=1000)
    EmailAttachment.objects.bulk_create(attachments, batch_size=200)

    already = set(
        MailboxMessage.objects.filter(mailbox=mailbox, message_id__in=ids.values()).values_list(
            "message_id", flat=True
        )
    )
    copies = []
    for key, message_id in ids.items():
        if message_id in already:
            continue
        item, parsed = by_key[key]
        sender = parsed.sender.address if parsed.sender else ""
        direction = Direction.OUTGOING if sender in own and not dropbox else Direction.INCOMING
        copies.append(
            MailboxMessage(
                mailbox=mailbox, message_id=message_id, folder=item.folder, uid=item.uid, direction=direction
            )
        )
    MailboxMessage.objects.bulk_create(copies, ignore_conflicts=True, batch_size=1000)
    result.copies = len(copies)

    # Threads' newest message, for the thread list's order.
    touched = {thread_of[key] for key in created}
    newest = (
        EmailMessage.objects.filter(thread_id=OuterRef("pk"))
        .values("thread_id")
        .annotate(m=Max("sent_at"))
        .values("m")
    )
    EmailThread.objects.filter(pk__in=touched).update(last_message_at=Subquery(newest))

    linked = list(EmailMessage.objects.filter(pk__in=[c.message_id for c in copies]))
    messages_link(
        mailbox=mailbox, messages=linked, reason=LinkReason.DROPBOX if dropbox else LinkReason.ADDRESS
    )
    return result
