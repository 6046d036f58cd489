"""Email templates and their merge fields: `{{ contact.first_name }}`, `{{ deal.name }}`,
`{{ contact.first_name | default: "there" }}`, `{{ trait.lifetime_value }}`.

Merge fields are filled by a small regex renderer over a whitelist of fields per object, never by
Django's template engine and never by attribute lookup on a name the user wrote: a template is
user text, and `{{ contact.owner.password }}` or `{% load %}` must mean nothing. A field without a
value and without a `default:` is an error naming the field (MergeFieldMissing), never a silent
blank ("Hi ," to a customer). In an HTML body the values are escaped; in a subject, line breaks in
a value become spaces (a header cannot be split by a contact's name).

Computed traits are `trait.<key>`: traits sits above mail, so their values come through
settings.MAIL_MERGE_TRAIT_HOOKS (callables taking contact_id=, returning {key: value}).
"""

import html as html_lib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils.module_loading import import_string

from contacts.models import Company, Contact
from core.errors import DomainError, Forbidden
from mail.html import html_sanitise
from mail.models import EmailTemplate
from mail.selectors.templates import template_may_edit
from pipeline.models import Deal


def _full_name(first: str, last: str) -> str:
    return f"{first} {last}".strip()


def _user_full_name(user) -> str:
    return _full_name(user.first_name, user.last_name)


# The fields a template may name, per object: (object, field) -> value getter. Adding one is a
# deliberate change here, so nothing private (an owner's email, a password hash) can leak by name.
FIELDS: dict[str, dict[str, Callable[[Any], Any]]] = {
    "contact": {
        "first_name": lambda c: c.first_name,
        "last_name": lambda c: c.last_name,
        "full_name": lambda c: _full_name(c.first_name, c.last_name),
        "email": lambda c: c.email,
        "phone": lambda c: c.phone,
        "title": lambda c: c.title,
    },
    "company": {
        "name": lambda c: c.name,
        "domain": lambda c: c.domain,
        "industry": lambda c: c.industry,
    },
    "deal": {
        "name": lambda d: d.title,
        "title": lambda d: d.title,
        "amount": lambda d: f"{d.amount:,.2f}",
        "currency": lambda d: d.currency,
        "stage": lambda d: d.stage.name,
        "expected_close_date": lambda d: d.expected_close_date.isoformat() if d.expected_close_date else "",
    },
    "sender": {
        "first_name": lambda u: u.first_name,
        "last_name": lambda u: u.last_name,
        "full_name": _user_full_name,
        "email": lambda u: u.email,
    },
}
TRAIT = "trait"

# A merge field: {{ object.field }} with an optional | default: "text". Anything else between
# {{ and }} is reported as not a merge field rather than sent as written.
_FIELD = re.compile(
    r"""\{\{\s*(?P<object>[a-z_]+)\.(?P<field>[A-Za-z0-9_-]+)\s*"""
    r"""(?:\|\s*default\s*:\s*(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)')\s*)?\}\}"""
)
_ANY = re.compile(r"\{\{.*?\}\}", re.DOTALL)


class MergeFieldMissing(DomainError):
    """Merge fields with no value for this recipient and no default: `missing` lists them
    ("contact.first_name"), for the composer to show."""

    code = "merge_field_missing"

    def __init__(self, missing: list[str]) -> None:
        self.missing = missing
        super().__init__(
            "No value for "
            + ", ".join(missing)
            + ': fill it in, or add a default ({{ field | default: "..." }}).',
            data={"missing": missing},
        )


class MergeFieldUnknown(DomainError):
    code = "merge_field_unknown"

    def __init__(self, unknown: list[str], *, where: str = "body") -> None:
        self.unknown = unknown
        message = "Not a merge field: " + ", ".join(unknown)
        super().__init__(message, fields={where: message}, data={"unknown": unknown})


@dataclass(slots=True)
class MergeContext:
    """The records a message is about. The company defaults to the contact's, then the deal's."""

    contact: Contact | None = None
    company: Company | None = None
    deal: Deal | None = None
    sender: AbstractBaseUser | None = None
    traits: dict[str, Any] | None = field(default=None)  # loaded on first use

    def __post_init__(self) -> None:
        if self.company is None:
            if self.contact is not None and self.contact.company_id is not None:
                self.company = self.contact.company
            elif self.deal is not None and self.deal.company_id is not None:
                self.company = self.deal.company

    def trait_values(self) -> dict[str, Any]:
        if self.traits is None:
            self.traits = {}
            if self.contact is not None:
                for path in getattr(settings, "MAIL_MERGE_TRAIT_HOOKS", []):
                    self.traits.update(import_string(path)(contact_id=self.contact.pk))
        return self.traits


def merge_fields_available() -> list[str]:
    """Every field a template may name (for the composer's picker); traits are `trait.<key>`."""
    return [f"{obj}.{name}" for obj, fields in FIELDS.items() for name in fields]


def merge_fields_unknown(text: str) -> list[str]:
    """What `text` writes between {{ }} that is not a known merge field, as written."""
    unknown = []
    for found in _ANY.finditer(text or ""):
        match = _FIELD.fullmatch(found.group(0))
        if match is None:
            unknown.append(found.group(0))
        elif match["object"] != TRAIT and match["field"] not in FIELDS.get(match["object"], {}):
            unknown.append(f"{match['object']}.{match['field']}")
    return list(dict.fromkeys(unknown))


def _display(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def merge_render(*, text: str, context: MergeContext, html: bool = False, header: bool = False) -> str:
    """`text` with its merge fields filled from `context`: escaped for HTML with html=True, on one
    line with header=True (a subject). Raises MergeFieldUnknown for what is not a field and
    MergeFieldMissing listing every field without a value (and no default)."""
    if unknown := merge_fields_unknown(text):
        raise MergeFieldUnknown(unknown)
    missing: list[str] = []

    def fill(match: re.Match) -> str:
        obj, name = match["object"], match["field"]
        if obj == TRAIT:
            value = context.trait_values().get(name)
        else:
            record = getattr(context, obj)
            value = FIELDS[obj][name](record) if record is not None else None
        shown = _display(value).strip()
        if not shown:
            default = match["dq"] if match["dq"] is not None else match["sq"]
            if default is None:
                missing.append(f"{obj}.{name}")
                return ""
            shown = default
        if header:
            shown = " ".join(shown.split())
        return html_lib.escape(shown, quote=True) if html else shown

    result = _FIELD.sub(fill, text or "")
    if missing:
        raise MergeFieldMissing(list(dict.fromkeys(missing)))
    return result


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    subject: str
    body_html: str
    body_text: str


def template_render(*, template: EmailTemplate, context: MergeContext) -> RenderedEmail:
    """A template filled for one recipient: the subject on one line, the (HTML) body with escaped
    values and sanitised, and its text alternative. Missing fields of both are reported together."""
    missing: list[str] = []
    parts = {}
    for name, text, kwargs in (
        ("subject", template.subject, {"header": True}),
        ("body", template.body, {"html": True}),
    ):
        try:
            parts[name] = merge_render(text=text, context=context, **kwargs)
        except MergeFieldMissing as exc:
            missing += exc.missing
    if missing:
        raise MergeFieldMissing(list(dict.fromkeys(missing)))
    body_html = html_sanitise(_line_breaks_kept(parts["body"]))
    return RenderedEmail(subject=parts["subject"], body_html=body_html, body_text=html_to_text(body_html))


_LAYOUT_TAG = re.compile(r"<(p|div|br|table|ul|ol|h[1-6]|blockquote|pre)\b", re.IGNORECASE)


def _line_breaks_kept(body: str) -> str:
    """A body written as text (no layout tags) keeps its line breaks in the HTML part; one written
    as HTML is laid out by its own tags, as an email client would."""
    body = (body or "").replace("\r\n", "\n")
    return body if _LAYOUT_TAG.search(body) else body.replace("\n", "<br>")


_BLOCK_END = re.compile(r"</(p|div|h[1-6]|li|tr|blockquote|pre|table)\s*>|<br\s*/?>", re.IGNORECASE)
_LINK = re.compile(r"""<a\b[^>]*?\bhref\s*=\s*"([^"]*)"[^>]*>(.*?)</a\s*>""", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


def html_to_text(body_html: str) -> str:
    """A readable text part for an HTML body: block ends as line breaks, links as "text (url)"."""

    def link(match: re.Match) -> str:
        url, label = html_lib.unescape(match[1]), _TAG.sub("", match[2]).strip()
        return f"{label} ({url})" if label and html_lib.unescape(label) != url else url

    text = _LINK.sub(link, body_html or "")
    text = _BLOCK_END.sub("\n", text)
    text = html_lib.unescape(_TAG.sub("", text))
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# --- template CRUD


def _validated(*, name: str, subject: str, body: str) -> dict[str, str]:
    name, subject = (name or "").strip(), " ".join((subject or "").split())
    errors = {}
    if not name:
        errors["name"] = "Give the template a name."
    if not subject:
        errors["subject"] = "A template needs a subject."
    if not (body or "").strip():
        errors["body"] = "A template needs a body."
    for where, text in (("subject", subject), ("body", body)):
        if unknown := merge_fields_unknown(text):
            errors[where] = "Not a merge field: " + ", ".join(unknown)
    if errors:
        raise DomainError("The template is not valid.", fields=errors)
    # Stored as written (an editor shows it back as typed: "Q&A", "a<b"); sanitised when rendered.
    return {"name": name[:200], "subject": subject, "body": body}


@transaction.atomic
def template_create(
    *, actor: AbstractBaseUser, name: str, subject: str, body: str, shared: bool = False
) -> EmailTemplate:
    """A template owned by `actor`, personal or shared with every rep. The body is HTML, stored
    sanitised; merge fields must be known ones."""
    return EmailTemplate.objects.create(
        owner=actor, shared=shared, **_validated(name=name, subject=subject, body=body)
    )


@transaction.atomic
def template_update(
    *,
    template: EmailTemplate,
    actor: AbstractBaseUser,
    name: str,
    subject: str,
    body: str,
    shared: bool | None = None,
) -> EmailTemplate:
    """Edit a template: its owner, or an Admin for a shared one."""
    template = EmailTemplate.objects.select_for_update().get(pk=template.pk)
    if not template_may_edit(template=template, user=actor):
        raise Forbidden("Only the template's owner (or an Admin, for a shared template) may edit it.")
    for attr, value in _validated(name=name, subject=subject, body=body).items():
        setattr(template, attr, value)
    if shared is not None:
        template.shared = shared
    template.save()
    return template


@transaction.atomic
def template_delete(*, template: EmailTemplate, actor: AbstractBaseUser) -> None:
    """Delete a template (sends made from it keep their text; their link to it is cleared)."""
    if not template_may_edit(template=template, user=actor):
        raise Forbidden("Only the template's owner (or an Admin, for a shared template) may delete it.")
    template.delete()
