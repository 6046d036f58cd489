"""How a message is known across mailboxes: the one rule the sync, the sender and the matcher share."""

import hashlib
import re

_ANGLE = re.compile(r"<([^<>]+)>")


def message_key(*, header_message_id: str, fallback: tuple[str, ...] = ()) -> str:
    """The unique key of a message: its Message-ID without the angle brackets, with the domain
    part lower-cased (RFC 5322 leaves the local part case-sensitive), else, for a message with
    none (or a blank one), "sha256:" and a digest of `fallback` (From, Date, Subject, the first
    body bytes: what a copy of the same message repeats)."""
    raw = (header_message_id or "").strip()
    found = _ANGLE.search(raw)
    value = (found.group(1) if found else raw).strip()
    if value and not any(c.isspace() for c in value):
        local, at, domain = value.rpartition("@")
        return f"{local}@{domain.lower()}" if at and local else value
    digest = hashlib.sha256("\x00".join(fallback).encode("utf-8", "replace")).hexdigest()
    return f"sha256:{digest}"
