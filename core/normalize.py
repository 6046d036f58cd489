"""Canonical forms of emails, domains and tags.

Services store these forms and selectors filter by them, so "Ada@Example.COM " typed in a form,
an API call and a tracked identify() all find the same row.
"""

import re
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from core.text import ensure_storable_text

TAG_MAX_LENGTH = 50
_DOMAIN_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_DOMAIN_RE = re.compile(rf"^{_DOMAIN_LABEL}(\.{_DOMAIN_LABEL})+$")


def normalize_email(value: str | None) -> str | None:
    """Trimmed and lower-cased; blank becomes None (no email). Does not validate."""
    if value is None:
        return None
    value = value.strip().lower()
    return value or None


def clean_email(value: str | None) -> str | None:
    email = normalize_email(value)
    if email is not None:
        validate_email(email)
    return email


def normalize_domain(value: str | None) -> str | None:
    """'HTTPS://www.Example.com:443/about?x#y' -> 'example.com'; blank becomes None. Does not validate."""
    if value is None:
        return None
    value = value.strip().lower()
    if "://" in value:
        value = value.split("://", 1)[1]
    value = value.removeprefix("//")
    value = re.split(r"[/?#]", value, maxsplit=1)[0]
    value = value.rsplit("@", 1)[-1]  # user:password@host
    value = value.split(":", 1)[0]  # port
    value = value.rstrip(".").removeprefix("www.")
    return value or None


def clean_domain(value: str | None) -> str | None:
    domain = normalize_domain(value)
    if domain is None:
        return None
    try:
        # International names are stored in their ASCII (punycode) form, as DNS and emails carry them.
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValidationError("Enter a valid domain name, like example.com.", code="invalid") from exc
    if len(domain) > 253 or not _DOMAIN_RE.match(domain):
        raise ValidationError("Enter a valid domain name, like example.com.", code="invalid")
    return domain


def email_domain(email: str) -> str | None:
    return normalize_domain(email.rsplit("@", 1)[-1]) if "@" in email else None


def clean_tags(values: Iterable[str] | None) -> list[str]:
    """Stripped, lower-cased, de-duplicated and sorted; blanks dropped; each at most 50 characters."""
    if values is None:
        return []
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise ValidationError("Tags must be a list of strings.", code="invalid")
    tags = set()
    for value in values:
        if not isinstance(value, str):
            raise ValidationError("Tags must be a list of strings.", code="invalid")
        tag = ensure_storable_text(value.strip().lower())
        if len(tag) > TAG_MAX_LENGTH:
            # Refused rather than cut: a truncated tag would silently join a different group.
            raise ValidationError(
                f"Tag {tag[:20]!r}… is longer than {TAG_MAX_LENGTH} characters.", code="max_length"
            )
        if tag:
            tags.add(tag)
    return sorted(tags)
