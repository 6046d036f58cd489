"""Sending email from the CRM through a rep's own mailbox (SMTP), once, with its record kept.

`email_send` checks and writes the send (an OutgoingEmail, SCHEDULED) with its Message-ID and
tracking token chosen up front, so every retry is the same message and a reply's In-Reply-To
finds it. `send_deliver` claims a due send (SCHEDULED -> SENDING under SELECT … FOR UPDATE SKIP
LOCKED, committed before SMTP is touched), sends it, and stores the sent message like synced mail
(EmailMessage, the mailbox's copy, links "Sent from the CRM" to the contact and deal, then the
matcher) with an `Email Sent` event on the contact.

Delivery is at most once. A second `send_deliver` of the same send finds it claimed and does
nothing; a worker killed between the SMTP answer and the commit leaves the send SENDING, and
`sends_stale_fail` later marks it FAILED saying it may have gone (the rep checks their Sent
folder) rather than risk mailing a customer twice. A temporary refusal (4xx, a dropped or
refused connection) goes back to SCHEDULED with a backoff; a permanent one (5xx, a refused
password) is FAILED with the server's words.

While a send is SENDING its `send_at` holds the claim's time (what `sends_stale_fail` reads):
there is no separate column for it.
"""

import datetime as dt
import email.policy
import email.utils
import html as html_lib
import logging
import re
import secrets
import smtplib
import uuid
from dataclasses import dataclass
from email.message import EmailMessage as MimeMessage

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Min, Q
from django.urls import reverse
from django.utils import timezone
from imapclient.exceptions import IMAPClientError

from contacts.models import Contact
from core.errors import Conflict, DomainError, Forbidden
from mail.headers import message_key
from mail.html import html_sanitise
from mail.models import (
    Direction,
    EmailLink,
    EmailMessage,
    EmailParticipant,
    EmailTemplate,
    EmailThread,
    LinkReason,
    Mailbox,
    MailboxKind,
    MailboxMessage,
    OutgoingEmail,
    ParticipantRole,
    SendStatus,
    TrackedLink,
)
from mail.services.auth import MailServerError, describe_network_error, imap_session, smtp_open
from mail.services.events import EMAIL_SENT, EmailEvent, email_events_record
from mail.services.matching import address_normalise, messages_link
from mail.services.templates import html_to_text
from pipeline.models import Deal

logger = logging.getLogger(__name__)

# Temporary failures are retried this many times in all, waiting RETRY_BASE_SECONDS * 2^(n-1)
# (1, 2, 4, 8, 16 min), at most RETRY_MAX_SECONDS: a greylisting server (the usual 451) accepts
# on the second try; a server down for longer than ~half an hour is worth telling the rep about.
MAX_ATTEMPTS = 6
RETRY_BASE_SECONDS = 60
RETRY_MAX_SECONDS = 3600
# A send SENDING for longer than this was cut off (killed worker): SMTP gives up far sooner.
STALE_AFTER = dt.timedelta(minutes=15)
MAX_RECIPIENTS = 100  # per send: a rep's email, not a campaign
CAP_WINDOW = dt.timedelta(hours=24)


class SendCapReached(DomainError):
    code = "send_cap_reached"


# --- writing the send


def _addresses(values, *, where: str) -> list[str]:
    """Validated "Name <a@b>" / "a@b" strings, formatted for headers (one address per entry);
    DomainError naming the entry that is not one."""
    result, seen = [], set()
    for raw in values or []:
        pairs = email.utils.getaddresses([raw]) if not any(c in raw for c in "\r\n") else []
        try:
            if len(pairs) != 1:
                raise ValidationError("not one address")
            name, addr = pairs[0]
            validate_email(addr)
        except ValidationError:
            message = f"Not an email address: {raw.strip()}"
            raise DomainError(message, fields={where: message}) from None
        if addr.lower() not in seen:
            seen.add(addr.lower())
            result.append(email.utils.formataddr((" ".join(name.split()), addr)))
    return result


def _envelope(send: OutgoingEmail) -> list[str]:
    return [email.utils.parseaddr(a)[1] for a in [*send.to, *send.cc, *send.bcc]]


def _message_id(mailbox: Mailbox) -> str:
    domain = mailbox.email_address.rpartition("@")[2].lower() or "localhost"
    return f"<{uuid.uuid4().hex}@{domain}>"


def _cap_count(*, mailbox: Mailbox, now: dt.datetime) -> int:
    """Sends of the mailbox in the rolling window: delivered in the last 24 h, plus those due now
    and not yet out (they will count the moment they go)."""
    return (
        OutgoingEmail.objects.filter(
            Q(status=SendStatus.SENT, sent_at__gt=now - CAP_WINDOW)
            | Q(status__in=[SendStatus.SCHEDULED, SendStatus.SENDING], send_at__lte=now)
        )
        .filter(mailbox=mailbox)
        .count()
    )


def _text_to_html(text: str) -> str:
    escaped = html_lib.escape(text)
    linked = re.sub(r"(https?://[^\s<>&\"']+)", r'<a href="\1">\1</a>', escaped)
    return "".join(f"<p>{para.replace(chr(10), '<br>')}</p>" for para in linked.split("\n\n"))


@transaction.atomic
def email_send(
    *,
    sender: AbstractBaseUser,
    mailbox: Mailbox,
    to: list[str],
    cc: list[str] | None = None,
    bcc: list[str] | None = None,
    subject: str,
    body_text: str = "",
    body_html: str = "",
    contact: Contact | None = None,
    deal: Deal | None = None,
    template: EmailTemplate | None = None,
    reply_to_message: EmailMessage | None = None,
    track: bool | None = None,
    send_at: dt.datetime | None = None,
) -> OutgoingEmail:
    """Write a send of `sender` through their `mailbox` (now, or at `send_at`), delivered by
    `send_deliver` after commit (a due send is queued at once; the beat task picks up the rest).
    Subject and bodies are final (merge fields already filled: mail.services.templates). The HTML
    is stored sanitised; a text-only send gets no HTML part unless it is tracked (a pixel needs
    HTML). `track` None follows the mailbox's default."""
    from mail.selectors.messages import _visible

    now = timezone.now()
    # The mailbox row is the lock that makes the cap exact: two sends at once count each other.
    mailbox = Mailbox.objects.select_for_update().get(pk=mailbox.pk)
    if mailbox.kind != MailboxKind.PERSONAL or mailbox.owner_id != sender.pk:
        raise Forbidden("You can only send from your own connected mailbox.")
    if not mailbox.smtp_host:
        raise DomainError("This mailbox has no SMTP server set: add it in Settings → Email.")
    to, cc, bcc = (
        _addresses(to, where="to"),
        _addresses(cc, where="cc"),
        _addresses(bcc, where="bcc"),
    )
    if not to:
        raise DomainError("Add at least one recipient.", fields={"to": "Add at least one recipient."})
    if len(to) + len(cc) + len(bcc) > MAX_RECIPIENTS:
        raise DomainError(
            f"At most {MAX_RECIPIENTS} recipients per email.", fields={"to": "Too many recipients."}
        )
    subject = " ".join((subject or "").split())  # a header is one line: no injected headers
    if not subject:
        raise DomainError("Add a subject.", fields={"subject": "Add a subject."})
    body_html = html_sanitise(body_html or "")
    body_text = (body_text or "").strip() or html_to_text(body_html)
    if not body_text and not body_html:
        raise DomainError("The email is empty.", fields={"body": "Write something."})
    track = mailbox.track_by_default if track is None else track
    if track:
        if not settings.CDP_PUBLIC_HOST:
            raise DomainError(
                "Tracking needs the app's public address (CDP_PUBLIC_HOST): the pixel and links must "
                "reach it from the recipient's mail client.",
                fields={"track": "Not available: CDP_PUBLIC_HOST is not set."},
            )
        body_html = body_html or _text_to_html(body_text)
    if (
        reply_to_message is not None
        and not EmailMessage.objects.filter(_visible(sender), pk=reply_to_message.pk).exists()
    ):
        raise Forbidden("You cannot reply to that message.")
    send_at = send_at or now
    if (
        send_at <= now + CAP_WINDOW
        and _cap_count(mailbox=mailbox, now=max(send_at, now)) >= mailbox.daily_send_cap
    ):
        raise SendCapReached(
            f"{mailbox.email_address} has reached its limit of {mailbox.daily_send_cap} emails in 24 hours: "
            "schedule this one for later, or raise the limit in Settings → Email.",
            fields={"send_at": "Daily sending limit reached."},
        )
    send = OutgoingEmail.objects.create(
        mailbox=mailbox,
        sender=sender,
        to=to,
        cc=cc,
        bcc=bcc,
        subject=subject,
        body_text=body_text,
        body_html=body_html,
        contact=contact,
        deal=deal,
        template=template,
        reply_to_message=reply_to_message,
        header_message_id=_message_id(mailbox),
        track=track,
        tracking_token=secrets.token_urlsafe(24),
        status=SendStatus.SCHEDULED,
        send_at=send_at,
    )
    if send_at <= now:
        from mail.tasks import send_deliver_task  # the task module imports this one

        transaction.on_commit(lambda: send_deliver_task.delay(send.pk))
    return send


@transaction.atomic
def send_cancel(*, send: OutgoingEmail, actor: AbstractBaseUser) -> OutgoingEmail:
    """Cancel a send that has not gone yet (its sender only)."""
    send = OutgoingEmail.objects.select_for_update().get(pk=send.pk)
    if send.sender_id != actor.pk:
        raise Forbidden("Only the sender can cancel this email.")
    if send.status == SendStatus.CANCELED:
        return send
    if send.status != SendStatus.SCHEDULED:
        raise Conflict(f"This email is {send.get_status_display().lower()}: it can no longer be canceled.")
    send.status = SendStatus.CANCELED
    send.save(update_fields=["status"])
    return send


# --- building the MIME message

_HREF = re.compile(r'(<a\b[^>]*?\bhref=")([^"]*)(")', re.IGNORECASE)


def _public_url(path: str) -> str:
    return f"{settings.CDP_PUBLIC_HOST}{path}"


def _tracked_html(send: OutgoingEmail) -> tuple[str, list[TrackedLink]]:
    """The send's HTML with each http(s) link through the click redirect and an open pixel at the
    end, and the links to store. The body is nh3's output (sanitised at email_send), which writes
    every attribute double-quoted with & escaped: one regex finds the hrefs reliably."""
    links: list[TrackedLink] = []

    def rewrite(match: re.Match) -> str:
        url = html_lib.unescape(match[2]).strip()
        if not re.match(r"https?://", url, re.IGNORECASE) or len(url) > 2000:
            return match[0]  # mailto:, anchors, cid: stay as written
        position = len(links) + 1
        links.append(TrackedLink(send=send, position=position, url=url))
        path = reverse("mail_tracking:click", kwargs={"token": send.tracking_token, "position": position})
        return f"{match[1]}{html_lib.escape(_public_url(path))}{match[3]}"

    body = _HREF.sub(rewrite, send.body_html)
    pixel_url = _public_url(reverse("mail_tracking:open", kwargs={"token": send.tracking_token}))
    pixel = f'<img src="{html_lib.escape(pixel_url)}" width="1" height="1" alt="" border="0">'
    if re.search(r"</body\s*>", body, re.IGNORECASE):
        body = re.sub(r"</body\s*>", pixel + "</body>", body, count=1, flags=re.IGNORECASE)
    else:
        body += pixel
    return body, links


def _references(parent: EmailMessage | None) -> tuple[str, list[str]]:
    """In-Reply-To and References of a reply (RFC 5322 3.6.4): the parent's id, after its own chain."""
    if parent is None or not parent.header_message_id:
        return "", []
    chain = [r for r in (parent.references or []) if r]
    if not chain and parent.in_reply_to:
        chain = [parent.in_reply_to]
    return parent.header_message_id, [*chain, parent.header_message_id]


def _sender_name(send: OutgoingEmail) -> str:
    if send.mailbox.display_name:
        return send.mailbox.display_name
    user = send.sender
    return f"{user.first_name} {user.last_name}".strip()


def _mime(send: OutgoingEmail, *, body_html: str, at: dt.datetime) -> MimeMessage:
    message = MimeMessage(policy=email.policy.SMTP)
    message["From"] = email.utils.formataddr((_sender_name(send), send.mailbox.email_address))
    message["To"] = ", ".join(send.to)
    if send.cc:
        message["Cc"] = ", ".join(send.cc)
    message["Subject"] = send.subject
    message["Date"] = email.utils.format_datetime(at)
    message["Message-ID"] = send.header_message_id
    in_reply_to, references = _references(send.reply_to_message)
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = " ".join(references)
    message.set_content(send.body_text or html_to_text(body_html))
    if body_html:
        message.add_alternative(f"<!DOCTYPE html><html><body>{body_html}</body></html>", subtype="html")
    return message


# --- delivering


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    send_id: int
    status: str  # the send's status afterwards, or "" when there was nothing to do
    error: str = ""


def _claim(send_id: int, *, now: dt.datetime) -> OutgoingEmail | None:
    with transaction.atomic():
        send = (
            OutgoingEmail.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk=send_id, status=SendStatus.SCHEDULED, send_at__lte=now)
            .select_related("mailbox", "sender", "reply_to_message")
            .first()
        )
        if send is None:  # gone, canceled, not due, already claimed, or being claimed right now
            return None
        # The cap again at delivery: scheduled sends fall due together.
        sent_in_window = OutgoingEmail.objects.filter(
            mailbox_id=send.mailbox_id, status=SendStatus.SENT, sent_at__gt=now - CAP_WINDOW
        )
        if sent_in_window.count() >= send.mailbox.daily_send_cap:
            oldest = sent_in_window.aggregate(m=Min("sent_at"))["m"]
            send.send_at = oldest + CAP_WINDOW
            send.error = (
                f"Waiting: the mailbox reached its limit of {send.mailbox.daily_send_cap} emails in 24 hours."
            )
            send.save(update_fields=["send_at", "error"])
            return None
        send.status = SendStatus.SENDING
        send.send_at = now  # the claim's time, for sends_stale_fail
        send.attempts += 1
        send.save(update_fields=["status", "send_at", "attempts"])
    return send


def _smtp_failure(exc: BaseException, *, where: str) -> tuple[str, bool]:
    """(what went wrong in words, whether it is permanent)."""
    if isinstance(exc, MailServerError):
        return str(exc), exc.auth
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        detail = "; ".join(
            f"{addr}: {code} {msg.decode(errors='replace')}" for addr, (code, msg) in exc.recipients.items()
        )
        return f"{where} refused the recipients ({detail}).", any(c >= 500 for c in codes)
    if isinstance(exc, smtplib.SMTPResponseException):
        text = (
            exc.smtp_error.decode(errors="replace")
            if isinstance(exc.smtp_error, bytes)
            else str(exc.smtp_error)
        )
        return f"{where} answered {exc.smtp_code} {text}", exc.smtp_code >= 500
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return f"{where}: the server closed the connection.", False
    return f"{where}: {describe_network_error(exc)}.", False


def send_deliver(*, send_id: int) -> DeliveryResult:
    """Deliver one due send; safe to call twice at once (one of them does nothing)."""
    now = timezone.now()
    send = _claim(send_id, now=now)
    if send is None:
        return DeliveryResult(send_id=send_id, status="")
    where = f"SMTP {send.mailbox.smtp_host}:{send.mailbox.smtp_port}"
    links: list[TrackedLink] = []
    body_html = send.body_html
    if send.track and body_html:
        body_html, links = _tracked_html(send)
    mime = _mime(send, body_html=body_html, at=now)
    refused: dict = {}
    try:
        # Links are stored before the message leaves: a click can come seconds after.
        TrackedLink.objects.bulk_create(links, ignore_conflicts=True)
        server = smtp_open(send.mailbox)
        try:
            refused = server.send_message(
                mime, from_addr=send.mailbox.email_address, to_addrs=_envelope(send)
            )
        finally:
            try:
                server.quit()
            except (OSError, smtplib.SMTPException):
                server.close()
    except (MailServerError, OSError, smtplib.SMTPException) as exc:
        error, permanent = _smtp_failure(exc, where=where)
        return _failed(send, error=error, permanent=permanent, now=now)
    result = _delivered(send, mime=mime, refused=refused, now=timezone.now())
    sent_copy_save(mailbox=send.mailbox, mime=mime)
    return result


# Providers that file what their SMTP sends in the Sent folder themselves (a second copy there
# would be a duplicate in the rep's mail client).
SENT_COPY_SKIP_HOSTS = (
    "imap.gmail.com",
    "imap.googlemail.com",
    "outlook.office365.com",
    "imap-mail.outlook.com",
)
_SENT_NAMES = ("sent", "sent items", "sent messages", "sent mail", "inbox.sent", "inbox/sent")


def sent_copy_save(*, mailbox: Mailbox, mime: MimeMessage) -> str:
    """File the sent message in the mailbox's Sent folder over IMAP (APPEND, marked read), as a
    mail client does, so the rep sees it in their own client too. Returns the folder used, or ""
    when skipped or failed: the send has gone either way, so a failure is logged, not raised; the
    sync later finds the copy and knows it (the same Message-ID is one message)."""
    host = (mailbox.imap_host or "").lower()
    if not host or host in getattr(settings, "MAIL_SENT_COPY_SKIP_HOSTS", SENT_COPY_SKIP_HOSTS):
        return ""
    try:
        with imap_session(mailbox, timeout=15) as client:
            folders = client.list_folders()
            special = [name for flags, _, name in folders if b"\\Sent" in flags]
            named = [name for _, _, name in folders if name.lower() in _SENT_NAMES]
            folder = (special or named or [""])[0]
            if not folder:
                return ""
            client.append(folder, mime.as_bytes(), flags=(b"\\Seen",))
            return folder
    except (MailServerError, OSError, EOFError, IMAPClientError) as exc:
        logger.warning("sent copy of %s not filed in %s: %s", mime.get("Message-ID"), mailbox.imap_host, exc)
        return ""


def _failed(send: OutgoingEmail, *, error: str, permanent: bool, now: dt.datetime) -> DeliveryResult:
    with transaction.atomic():
        if permanent or send.attempts >= MAX_ATTEMPTS:
            status = SendStatus.FAILED
            if not permanent:
                error = f"Gave up after {send.attempts} attempts: {error}"
            send_at = send.send_at
        else:
            status = SendStatus.SCHEDULED
            delay = min(RETRY_BASE_SECONDS * 2 ** (send.attempts - 1), RETRY_MAX_SECONDS)
            send_at = now + dt.timedelta(seconds=delay)
            error = f"Will retry at {send_at:%H:%M} UTC: {error}"
        updated = OutgoingEmail.objects.filter(pk=send.pk, status=SendStatus.SENDING).update(
            status=status, send_at=send_at, error=error[:2000]
        )
    logger.info("send %s not delivered (%s): %s", send.pk, status, error)
    return DeliveryResult(send_id=send.pk, status=status if updated else "", error=error)


@transaction.atomic
def _delivered(send: OutgoingEmail, *, mime: MimeMessage, refused: dict, now: dt.datetime) -> DeliveryResult:
    message = _message_store(send, mime=mime, now=now)
    error = ""
    if refused:  # some recipients refused, the rest accepted: it was sent, say to whom not
        error = "Not delivered to: " + ", ".join(
            f"{addr} ({code} {msg.decode(errors='replace')})" for addr, (code, msg) in refused.items()
        )
    OutgoingEmail.objects.filter(pk=send.pk).update(
        status=SendStatus.SENT, sent_at=now, message=message, error=error
    )
    send.message = message
    messages_link(mailbox=send.mailbox, messages=[message], reason=LinkReason.SENT)
    events = [
        EmailEvent(
            contact_id=contact_id,
            name=EMAIL_SENT,
            key=key,
            timestamp=now,
            properties={
                "subject": send.subject,
                "send_id": send.pk,
                "deal_id": send.deal_id,
                "template_id": send.template_id,
                "tracked": send.track,
                "mailbox_id": send.mailbox_id,
            },
        )
        for contact_id, key in send_contacts(send, key="send")
    ]
    email_events_record(events=events)
    return DeliveryResult(send_id=send.pk, status=SendStatus.SENT, error=error)


def send_contacts(send: OutgoingEmail, *, key: str) -> list[tuple[int, str]]:
    """(contact id, event key) an event of this send belongs to: the send's contact (key
    "<key>:<send>"), else each contact it was addressed to (To) ("<key>:<send>:<contact>")."""
    if send.contact_id is not None:
        return [(send.contact_id, f"{key}:{send.pk}")]
    if send.message_id is None:
        return []
    ids = (
        EmailParticipant.objects.filter(
            message_id=send.message_id, role=ParticipantRole.TO, contact__isnull=False
        )
        .order_by("contact_id")
        .values_list("contact_id", flat=True)
        .distinct()
    )
    return [(contact_id, f"{key}:{send.pk}:{contact_id}") for contact_id in ids]


def _message_store(send: OutgoingEmail, *, mime: MimeMessage, now: dt.datetime) -> EmailMessage:
    """The sent message as the timeline shows it (the untracked body: the rep's own clicks in the
    CRM must not count as the customer's), in the parent's thread for a reply."""
    key = message_key(header_message_id=send.header_message_id)
    message = EmailMessage.objects.filter(message_key=key).first()
    if message is None:
        parent = send.reply_to_message
        thread = parent.thread if parent is not None else EmailThread.objects.create(subject=send.subject)
        in_reply_to, references = _references(parent)
        message = EmailMessage.objects.create(
            message_key=key,
            header_message_id=send.header_message_id,
            in_reply_to=in_reply_to,
            references=references,
            thread=thread,
            subject=send.subject,
            from_address=address_normalise(send.mailbox.email_address),
            from_name=_sender_name(send),
            sent_at=now,
            text_body=send.body_text,
            html_body=send.body_html,
            snippet=" ".join(send.body_text.split())[:300],
            size_bytes=len(mime.as_bytes()),
        )
        EmailThread.objects.filter(pk=thread.pk).update(last_message_at=now)
        users = dict(get_user_model().objects.exclude(email="").values_list("email", "pk"))
        users = {address_normalise(k): v for k, v in users.items()}
        rows = [(ParticipantRole.FROM, message.from_address, message.from_name)]
        for role, values in (
            (ParticipantRole.TO, send.to),
            (ParticipantRole.CC, send.cc),
            (ParticipantRole.BCC, send.bcc),
        ):
            for value in values:
                name, addr = email.utils.parseaddr(value)
                if address := address_normalise(addr):
                    rows.append((role, address, name[:200]))
        EmailParticipant.objects.bulk_create(
            [
                EmailParticipant(
                    message=message, role=role, address=address, name=name, user_id=users.get(address)
                )
                for role, address, name in rows
            ],
            ignore_conflicts=True,
        )
    MailboxMessage.objects.get_or_create(
        mailbox=send.mailbox, message=message, defaults={"direction": Direction.OUTGOING, "folder": ""}
    )
    records = {"contact_id": send.contact_id, "deal_id": send.deal_id}
    links = [
        EmailLink(
            message=message,
            sent_at=message.sent_at,
            reason=LinkReason.SENT,
            via=send.header_message_id,
            **{field: pk},
        )
        for field, pk in records.items()
        if pk is not None
    ]
    EmailLink.objects.bulk_create(links, ignore_conflicts=True)
    return message


# --- the beat task's reads and sweeps


def sends_due(*, now: dt.datetime | None = None, limit: int = 500) -> list[int]:
    """Ids of the scheduled sends due now, oldest first."""
    now = now or timezone.now()
    return list(
        OutgoingEmail.objects.filter(status=SendStatus.SCHEDULED, send_at__lte=now)
        .order_by("send_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def sends_stale_fail(*, now: dt.datetime | None = None) -> int:
    """Sends stuck in SENDING (their worker died) become FAILED, never retried: the server may have
    accepted the message before the worker went, and a customer mailed twice is worse than a rep
    asked to check their Sent folder."""
    now = now or timezone.now()
    return OutgoingEmail.objects.filter(status=SendStatus.SENDING, send_at__lt=now - STALE_AFTER).update(
        status=SendStatus.FAILED,
        error=(
            "Sending was interrupted: the email may or may not have gone. "
            "Check your Sent folder before sending it again."
        ),
    )
