"""Raw RFC 822 bytes to what the CRM stores of a message: never raises on what real mailboxes hold.

Python's email package parses with the compat32 policy: headers stay raw strings and this module
decodes the ones it reads (encoded-words, raw UTF-8), once each. The modern policy parsed every
header access through its registry (a Content-Type alone some 27 times a message): 60% of a
sync's time, for the same strings. Real mail also has undecodable encoded-words, unknown charsets
("x-unknown", "utf8mb4") and parts without a charset. Each read falls back (the raw header with
replacement characters, the payload decoded as UTF-8 then Latin-1) so one bad header costs that
header, not the message. What cannot be read at all (no headers, not a message) raises
`MessageUnparseable` with the reason the sync records on a SkippedMessage.
"""

import contextlib
import email
import email.header
import email.policy
import email.utils
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message

from mail.headers import message_key
from mail.html import html_sanitise

# What is stored of a body. Bigger HTML (a 10 MB newsletter) is cut before sanitising: nh3 then
# closes the open tags, so the stored part is valid, and the text part is kept whole up to its cap.
HTML_MAX_CHARS = 1_000_000
TEXT_MAX_CHARS = 500_000
SNIPPET_CHARS = 200
HEADER_MAX = 998  # RFC 5322's line limit: the stored columns' width

_WS = re.compile(r"\s+")
_TAGS = re.compile(r"<[^>]*>")
_MSGID = re.compile(r"<[^<>\s]+>")
# The header block an inline forward starts with (Gmail, Apple Mail, Outlook).
_FORWARD_MARK = re.compile(
    r"^-{2,}\s*(Forwarded message|Original Message|Weitergeleitete Nachricht|Message transféré)\s*-{2,}\s*$"
    r"|^Begin forwarded message:\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_FORWARD_HEADER = re.compile(r"^\s*\*?(From|To|Cc|Date|Sent|Subject)\*?:\s*(.*)$", re.IGNORECASE)


class MessageUnparseable(Exception):
    """Not a message we can store; the text is the reason shown on the mailbox's sync health."""


@dataclass(frozen=True, slots=True)
class Address:
    address: str  # normalised: trimmed, lower-cased
    name: str = ""


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content_type: str
    payload: bytes
    content_id: str = ""


@dataclass(slots=True)
class ParsedMessage:
    header_message_id: str
    message_key: str
    in_reply_to: str
    references: list[str]
    subject: str
    sender: Address | None
    to: list[Address]
    cc: list[Address]
    bcc: list[Address]
    sent_at: datetime
    text_body: str
    html_body: str  # sanitised
    snippet: str
    size_bytes: int
    attachments: list[Attachment] = field(default_factory=list)
    # The message a forward carries (attached as message/rfc822, or inline after a forward mark).
    forwarded: "ParsedMessage | None" = None
    notes: list[str] = field(default_factory=list)  # what was cut or could not be read
    # Why the receiving server says the From is not the sender's ("dmarc=fail"), or "".
    auth_failure: str = ""


def _normalise(address: str) -> str:
    value = (address or "").strip().strip("<>").strip().lower()
    local, at, domain = value.rpartition("@")
    if not at or not local or "." not in domain or any(c.isspace() for c in value):
        return ""
    return value[:320]


def _unescaped(value: object) -> str:
    """Raw 8-bit header bytes read as UTF-8 (the parser keeps them as surrogate escapes, or, in a
    header it fetches, as an "unknown-8bit" Header whose str() would be replacement characters)."""
    if isinstance(value, email.header.Header):
        chunks = []
        for chunk, charset in email.header.decode_header(value):
            if isinstance(chunk, bytes):
                try:
                    chunk = chunk.decode(
                        charset if charset not in (None, "unknown-8bit") else "utf-8", "replace"
                    )
                except LookupError:
                    chunk = chunk.decode("utf-8", "replace")
            chunks.append(chunk)
        return "".join(chunks)
    text = str(value)
    if any("\udc80" <= c <= "\udcff" for c in text):
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return text


def _decoded(value: object) -> str:
    """A raw header value as text: raw bytes as UTF-8, encoded-words decoded; what cannot be
    decoded keeps its raw form."""
    text = _unescaped(value)
    if "=?" in text:
        with contextlib.suppress(Exception):
            text = str(email.header.make_header(email.header.decode_header(text)))
    return text


def _header(message: Message, name: str) -> str:
    value = message.get(name)
    if value is None:
        return ""
    return _WS.sub(" ", _decoded(value)).strip()[:HEADER_MAX]


def _addresses(message: Message, name: str) -> list[Address]:
    # Split first, decode the display names after: a decoded name may hold a comma or "<".
    values = [_unescaped(v) for v in message.get_all(name) or []]
    try:
        pairs = email.utils.getaddresses(values)
    except Exception:
        pairs = []
    seen, found = set(), []
    for display, raw in pairs:
        address = _normalise(raw)
        if address and address not in seen:
            seen.add(address)
            found.append(Address(address=address, name=_WS.sub(" ", _decoded(display)).strip()[:200]))
    return found


def _date(message: Message, fallback: datetime | None) -> datetime:
    raw = _header(message, "Date")
    try:
        parsed = email.utils.parsedate_to_datetime(raw) if raw else None
    except (TypeError, ValueError, IndexError):
        parsed = None
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    # A date before 1980 or in the far future is a broken clock: the server's arrival time is truer.
    if parsed is None or not (1980 <= parsed.year <= 2100):
        parsed = fallback or datetime.now(UTC)
    return parsed


def _decode(part: Message) -> str:
    payload = part.get_payload(decode=True) or b""
    if isinstance(payload, str):
        return payload
    charset = part.get_content_charset() or "utf-8"
    for candidate in (charset, "utf-8"):
        try:
            return payload.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    return payload.decode("latin-1")


def _walk(message: Message, parsed: dict) -> None:
    """Collect the first text and HTML parts, attachments and a forwarded message."""
    for part in message.walk() if message.is_multipart() else [message]:
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        disposition = (part.get_content_disposition() or "").lower()
        if ctype == "message/rfc822":
            inner = part.get_payload()
            inner = inner[0] if isinstance(inner, list) and inner else inner
            if isinstance(inner, Message) and parsed["forwarded"] is None:
                parsed["forwarded"] = inner
            continue
        try:
            filename = _decoded(part.get_filename() or "")
        except Exception:
            filename = ""
        if disposition == "attachment" or (filename and ctype not in ("text/plain", "text/html")):
            payload = part.get_payload(decode=True) or b""
            content_id = _header(part, "Content-ID").strip("<>")
            parsed["attachments"].append(
                Attachment(
                    filename=_safe_filename(filename) or "attachment",
                    content_type=ctype[:255],
                    payload=payload if isinstance(payload, bytes) else payload.encode(),
                    content_id=content_id[:998],
                )
            )
            continue
        if ctype == "text/plain" and parsed["text"] is None:
            parsed["text"] = _decode(part)
        elif ctype == "text/html" and parsed["html"] is None:
            parsed["html"] = _decode(part)


def _safe_filename(name: str) -> str:
    """The sender's name for the file, without paths or control characters (the stored file is
    content-addressed; this is only the download's suggested name)."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable() and c not in '<>:"|?*')
    return name.strip(" .")[:255]


def _text_of_html(html: str) -> str:
    return _WS.sub(" ", _TAGS.sub(" ", html)).strip()


def _from_message(message: Message, *, size: int, received_at: datetime | None, depth: int) -> ParsedMessage:
    if not message.keys():
        raise MessageUnparseable("No headers: not an email message.")
    parts = {"text": None, "html": None, "attachments": [], "forwarded": None}
    notes: list[str] = []
    try:
        _walk(message, parts)
    except Exception as exc:  # a structure the parser gave up on midway: keep what was read
        notes.append(f"Part of the body could not be read ({type(exc).__name__}).")
    if message.defects:
        notes.append(
            "Malformed MIME: " + ", ".join(sorted({type(d).__name__ for d in message.defects}))[:300]
        )
    text = parts["text"] or ""
    html = parts["html"] or ""
    if len(html) > HTML_MAX_CHARS:
        notes.append(f"HTML body cut at {HTML_MAX_CHARS:,} of {len(html):,} characters.")
        html = html[:HTML_MAX_CHARS]
    html = html_sanitise(html)
    if len(text) > TEXT_MAX_CHARS:
        notes.append(f"Text body cut at {TEXT_MAX_CHARS:,} of {len(text):,} characters.")
        text = text[:TEXT_MAX_CHARS]
    text = text.replace("\x00", "")
    subject = _header(message, "Subject")
    senders = _addresses(message, "From")
    header_id = _header(message, "Message-ID")
    sent_at = _date(message, received_at)
    body_start = (text or _text_of_html(html))[:512]
    key = message_key(
        header_message_id=header_id,
        fallback=(senders[0].address if senders else "", sent_at.isoformat(), subject, body_start),
    )
    references = _MSGID.findall(_header(message, "References"))
    in_reply_to = (_MSGID.findall(_header(message, "In-Reply-To")) or [""])[0]
    snippet_source = text or _text_of_html(html)
    parsed = ParsedMessage(
        header_message_id=header_id if _MSGID.fullmatch(header_id or "") else "",
        message_key=key,
        in_reply_to=in_reply_to,
        references=references[-50:],  # a runaway chain: the newest ids are the ones that thread
        subject=subject,
        sender=senders[0] if senders else None,
        to=_addresses(message, "To"),
        cc=_addresses(message, "Cc"),
        bcc=_addresses(message, "Bcc"),
        sent_at=sent_at,
        text_body=text,
        html_body=html,
        snippet=_WS.sub(" ", snippet_source).strip()[:SNIPPET_CHARS],
        size_bytes=size,
        attachments=parts["attachments"],
        notes=notes,
    )
    if depth == 0:
        if parts["forwarded"] is not None:
            with contextlib.suppress(MessageUnparseable):
                parsed.forwarded = _from_message(
                    parts["forwarded"], size=size, received_at=received_at, depth=1
                )
        elif (inline := _inline_forward(text, received_at=sent_at)) is not None:
            parsed.forwarded = inline
    return parsed


def _inline_forward(text: str, *, received_at: datetime) -> ParsedMessage | None:
    """A forward pasted into the body ("---------- Forwarded message ---------" then From:,
    Date:, Subject:, To: lines): the original's headers and the text after them."""
    mark = _FORWARD_MARK.search(text or "")
    if mark is None:
        return None
    lines = text[mark.end() :].lstrip("\r\n").splitlines()
    headers: dict[str, str] = {}
    body_at = 0
    for i, line in enumerate(lines):
        found = _FORWARD_HEADER.match(line)
        if found:
            headers.setdefault(found.group(1).lower(), found.group(2).strip())
            continue
        if headers and not line.strip():
            body_at = i + 1
            break
    if "from" not in headers:
        return None
    block = "".join(f"{k.title()}: {v}\n" for k, v in headers.items() if k != "sent")
    if "date" not in headers and "sent" in headers:
        block += f"Date: {headers['sent']}\n"
    body = "\n".join(lines[body_at:])
    original = email.message_from_string(block + "\n" + body, policy=email.policy.compat32)
    return _from_message(original, size=len(body.encode()), received_at=received_at, depth=1)


_AUTH_RESULT = re.compile(r"\b(dmarc|spf|dkim)\s*=\s*([a-z]+)", re.IGNORECASE)


def sender_auth_failure(message: Message) -> str:
    """What the receiving server's Authentication-Results (RFC 8601) say against the From: the
    topmost header is the one our server added on receipt (anything below it came with the
    message). Only a failure counts: a sender can write its own "pass" header, and a server that
    adds none leaves "" (unknown), so this is evidence of forgery, never proof of authenticity.
    Forged: DMARC failed, or without a DMARC result, SPF failed and no DKIM signature passed."""
    header = message.get("Authentication-Results")
    if header is None:
        return ""
    results: dict[str, str] = {}
    for method, result in _AUTH_RESULT.findall(_unescaped(header)):
        results.setdefault(method.lower(), result.lower())
    if results.get("dmarc") == "fail":
        return "dmarc=fail"
    if "dmarc" not in results and results.get("spf") == "fail" and results.get("dkim") != "pass":
        return "spf=fail" + (f", dkim={results['dkim']}" if "dkim" in results else "")
    return ""


def message_parse(*, raw: bytes, received_at: datetime | None = None) -> ParsedMessage:
    """Parse one message as a mailbox holds it. `received_at` (the server's INTERNALDATE) stands
    in for a missing or absurd Date header."""
    if not raw or not raw.strip():
        raise MessageUnparseable("Empty message.")
    try:
        message = email.message_from_bytes(raw, policy=email.policy.compat32)
    except Exception as exc:
        raise MessageUnparseable(f"Not a readable MIME message ({type(exc).__name__}).") from exc
    if not isinstance(message, Message):
        raise MessageUnparseable("Not a readable MIME message.")
    parsed = _from_message(message, size=len(raw), received_at=received_at, depth=0)
    parsed.auth_failure = sender_auth_failure(message)
    return parsed
