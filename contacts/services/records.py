"""Writes to contacts and companies. Every change goes through here: normalised, validated, permitted.

`actor` is the user making the change (checked against contacts.permissions), or None for the
system itself (identity worker, imports), which skips the permission checks.
"""

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, connection, models, transaction
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.text import slugify

from accounts.permissions import ensure_admin
from contacts import custom_fields, permissions
from contacts.models import (
    Company,
    Contact,
    ContactMerge,
    CustomField,
    CustomFieldEntity,
    CustomFieldType,
    FieldChange,
    LifecycleStage,
    ListColumns,
    SavedView,
)
from contacts.selectors import contact_person_ids
from contacts.services import changes
from core.errors import Conflict, Forbidden, NotFound
from core.normalize import clean_domain, clean_email, clean_tags, email_domain
from core.text import ensure_storable_text

Actor = AbstractBaseUser | None

CONTACT_FIELDS = frozenset(
    {
        "first_name",
        "last_name",
        "email",
        "phone",
        "title",
        "company",
        "owner",
        "lifecycle_stage",
        "tags",
        "custom_fields",
    }
)
# A CRM contact needs one of these, or it is saved as a nameless "Visitor #206" nobody can find or
# reach. Anonymous visitors are created by the identity worker, which does not come through here.
IDENTIFYING_FIELDS = ("first_name", "last_name", "email", "phone")
NEEDS_IDENTIFIER = "A contact needs a name, an email or a phone number."
# Positions order a handful of fields; the bound keeps a typed number inside the int column.
MAX_CUSTOM_FIELD_POSITION = 10_000
COMPANY_FIELDS = frozenset({"name", "domain", "industry", "size", "owner", "custom_fields"})


# --- contacts


@transaction.atomic
def contact_create(*, actor: Actor, **fields: Any) -> Contact:
    """Create a contact. The creator owns it unless `owner` is given (as in Pipedrive).

    With an email and no `company` given, the contact joins the company whose domain is the
    email's domain.
    """
    _check_field_names(fields, CONTACT_FIELDS)
    permissions.ensure_can_create(actor, kind="contacts")
    fields.setdefault("owner", actor)
    contact = Contact()
    _apply_contact_fields(contact, fields)
    if contact.email and "company" not in fields:
        contact.company = _company_for_email(contact.email)
    _save_contact(contact)
    changes.contacts_changed(contact_ids=[contact.pk])
    return contact


@transaction.atomic
def contact_update(*, contact: Contact, actor: Actor, **fields: Any) -> Contact:
    _check_field_names(fields, CONTACT_FIELDS)
    # Lock and re-read: the permission check and the duplicate check see the row as it is now.
    contact = _locked(Contact, contact.pk)
    permissions.ensure_can_change(actor, contact)
    if contact.merged_into_id is not None:
        raise Conflict(
            f"Contact {contact.pk} was merged into contact {contact.merged_into_id}; change that one.",
            code="merged",
        )
    before = {name: _current(contact, name) for name in fields}
    changed = _apply_contact_fields(contact, fields)
    if changed:
        _save_contact(contact, update_fields=[*changed, "updated_at"])
        _record_changes(entity="contact", instance=contact, before=before, changed=changed, actor=actor)
    return contact


@transaction.atomic
def contact_delete(*, contact: Contact, actor: Actor) -> dict[str, int]:
    """Delete a contact and the tombstones merged into it. Deleting a deleted contact is a no-op.
    Returns the rows deleted per model label (the contacts and everything cascading from them)."""
    contact = Contact.objects.select_for_update().filter(pk=contact.pk).first()
    if contact is None:
        return {}
    permissions.ensure_can_change(actor, contact)
    # merged_into is SET_NULL, so a tombstone left behind would come back to life as a live
    # contact; they are the same person, so they go too.
    person = contact_person_ids(contact=contact)
    changes.contacts_deleting(contact_ids=person)
    return Contact.objects.filter(pk__in=person).delete()[1]


def _apply_contact_fields(contact: Contact, fields: dict[str, Any]) -> list[str]:
    """Normalise and validate `fields` onto `contact`; return the names that changed."""
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    for name, value in fields.items():
        try:
            values[name] = _clean_contact_value(contact, name, value)
        except ValidationError as exc:
            errors[name] = exc.messages
    if errors:
        raise ValidationError(errors)
    changed = [name for name, value in values.items() if _current(contact, name) != _key(value)]
    # A new contact must be identifiable; an existing one may not lose its last identifier, but
    # editing other fields of a tracked anonymous visitor (no name yet) stays allowed.
    if contact.pk is None or set(changed) & set(IDENTIFYING_FIELDS):
        after = {name: values.get(name, getattr(contact, name)) for name in IDENTIFYING_FIELDS}
        if not any(after.values()):
            raise ValidationError({NON_FIELD_ERRORS: [NEEDS_IDENTIFIER]})
    for name, value in values.items():
        setattr(contact, name, value)
    return changed


def _clean_contact_value(contact: Contact, name: str, value: Any) -> Any:
    if name == "email":
        return clean_email(_str_or_none(value))
    if name == "tags":
        return clean_tags(value)
    if name == "lifecycle_stage":
        if value not in LifecycleStage.values:
            raise ValidationError(
                f"{value!r} is not a lifecycle stage; expected one of {', '.join(LifecycleStage.values)}.",
                code="invalid_choice",
            )
        return value
    if name == "company":
        if value is not None and not isinstance(value, Company):
            raise ValidationError("Expected a company.", code="invalid")
        return value
    return _clean_common(Contact, contact, name, value)


def _save_contact(contact: Contact, *, update_fields: list[str] | None = None) -> None:
    if contact.email and (update_fields is None or "email" in update_fields):
        other = (
            Contact.objects.alias(email_lower=Lower("email"))
            .filter(email_lower=contact.email, merged_into__isnull=True)
            .exclude(pk=contact.pk)
            .values_list("pk", flat=True)
            .first()
        )
        if other is not None:
            raise _duplicate_email(contact.email, other)
    try:
        _save_in_savepoint(contact, update_fields)
    except IntegrityError as exc:  # a concurrent request took the email after our check
        if _constraint_name(exc) == "contact_live_email_unique":
            raise _duplicate_email(contact.email, None) from exc
        raise


def _duplicate_email(email: str, other_pk: int | None) -> Conflict:
    which = f" (contact {other_pk})" if other_pk else ""
    message = f"Another contact already has the email {email}{which}."
    return Conflict(message, fields={"email": [message]}, code="duplicate_email")


def _company_for_email(email: str) -> Company | None:
    domain = email_domain(email)
    return Company.objects.filter(domain=domain).first() if domain else None


# --- companies


@transaction.atomic
def company_create(*, actor: Actor, **fields: Any) -> Company:
    """Create a company. The creator owns it unless `owner` is given."""
    _check_field_names(fields, COMPANY_FIELDS)
    permissions.ensure_can_create(actor, kind="companies")
    fields.setdefault("owner", actor)
    fields.setdefault("name", "")
    company = Company()
    _apply_company_fields(company, fields)
    _save_company(company)
    return company


@transaction.atomic
def company_update(*, company: Company, actor: Actor, **fields: Any) -> Company:
    _check_field_names(fields, COMPANY_FIELDS)
    company = _locked(Company, company.pk)
    permissions.ensure_can_change(actor, company)
    before = {name: _current(company, name) for name in fields}
    changed = _apply_company_fields(company, fields)
    if changed:
        _save_company(company, update_fields=[*changed, "updated_at"])
        _record_changes(entity="company", instance=company, before=before, changed=changed, actor=actor)
    return company


@transaction.atomic
def company_delete(*, company: Company, actor: Actor) -> None:
    """Delete a company; its contacts stay, without a company. Deleting twice is a no-op."""
    company = Company.objects.select_for_update().filter(pk=company.pk).first()
    if company is None:
        return
    permissions.ensure_can_change(actor, company)
    company.delete()


def _apply_company_fields(company: Company, fields: dict[str, Any]) -> list[str]:
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    for name, value in fields.items():
        try:
            if name == "domain":
                values[name] = clean_domain(_str_or_none(value))
            else:
                values[name] = _clean_common(Company, company, name, value)
        except ValidationError as exc:
            errors[name] = exc.messages
    if errors:
        raise ValidationError(errors)
    changed = [name for name, value in values.items() if _current(company, name) != _key(value)]
    for name, value in values.items():
        setattr(company, name, value)
    return changed


def _save_company(company: Company, *, update_fields: list[str] | None = None) -> None:
    if company.domain and (update_fields is None or "domain" in update_fields):
        other = (
            Company.objects.filter(domain=company.domain).exclude(pk=company.pk).values_list("pk", flat=True)
        )
        if other_pk := other.first():
            raise _duplicate_domain(company.domain, other_pk)
    try:
        _save_in_savepoint(company, update_fields)
    except IntegrityError as exc:
        if _constraint_name(exc) == "company_domain_unique":
            raise _duplicate_domain(company.domain, None) from exc
        raise


def _duplicate_domain(domain: str, other_pk: int | None) -> Conflict:
    which = f" (company {other_pk})" if other_pk else ""
    message = f"Another company already has the domain {domain}{which}."
    return Conflict(message, fields={"domain": [message]}, code="duplicate_domain")


# --- bulk actions from the list pages


@dataclass
class BulkResult:
    """What a bulk action did: rows changed, and rows left alone because the actor may not change
    them (another rep's records) or they were gone."""

    changed: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)


def contact_bulk_update(
    *,
    actor: Actor,
    contact_ids: list[int],
    owner: Any = ...,
    lifecycle_stage: str | None = None,
    add_tags: list[str] | None = None,
    remove_tags: list[str] | None = None,
) -> BulkResult:
    """Set owner and/or lifecycle stage, add and remove tags, on each contact the actor may change.

    Each contact is its own transaction through contact_update (permissions, history), so one
    refused row does not undo the others; a rep's selection may mix their rows and others'.
    """
    add, remove = set(clean_tags(add_tags)), set(clean_tags(remove_tags))
    if lifecycle_stage is not None and lifecycle_stage not in LifecycleStage.values:
        raise ValidationError({"lifecycle_stage": [f"{lifecycle_stage!r} is not a lifecycle stage."]})
    result = BulkResult()
    for contact in Contact.objects.filter(pk__in=contact_ids, merged_into__isnull=True).order_by("pk"):
        if actor is not None and not permissions.can_change(actor, contact):
            result.skipped += 1
            continue
        fields: dict[str, Any] = {}
        if owner is not ...:
            fields["owner"] = owner
        if lifecycle_stage:
            fields["lifecycle_stage"] = lifecycle_stage
        if add or remove:
            fields["tags"] = sorted((set(contact.tags) | add) - remove)
        try:
            contact_update(contact=contact, actor=actor, **fields)
        except (Forbidden, NotFound, Conflict) as exc:  # changed or deleted since it was read
            result.skipped += 1
            result.errors.append(f"{contact}: {exc.message}")
            continue
        result.changed += 1
    result.skipped += len(set(contact_ids)) - result.changed - result.skipped
    return result


def contact_bulk_delete(*, actor: Actor, contact_ids: list[int]) -> BulkResult:
    result = BulkResult()
    for contact in Contact.objects.filter(pk__in=contact_ids, merged_into__isnull=True).order_by("pk"):
        if actor is not None and not permissions.can_change(actor, contact):
            result.skipped += 1
            continue
        try:
            contact_delete(contact=contact, actor=actor)
        except Forbidden as exc:
            result.skipped += 1
            result.errors.append(f"{contact}: {exc.message}")
            continue
        result.changed += 1
    result.skipped += len(set(contact_ids)) - result.changed - result.skipped
    return result


def company_bulk_update(*, actor: Actor, company_ids: list[int], owner: Any = ...) -> BulkResult:
    result = BulkResult()
    for company in Company.objects.filter(pk__in=company_ids).order_by("pk"):
        if actor is not None and not permissions.can_change(actor, company):
            result.skipped += 1
            continue
        if owner is not ...:
            try:
                company_update(company=company, actor=actor, owner=owner)
            except (Forbidden, NotFound) as exc:
                result.skipped += 1
                result.errors.append(f"{company}: {exc.message}")
                continue
        result.changed += 1
    result.skipped += len(set(company_ids)) - result.changed - result.skipped
    return result


def company_bulk_delete(*, actor: Actor, company_ids: list[int]) -> BulkResult:
    result = BulkResult()
    for company in Company.objects.filter(pk__in=company_ids).order_by("pk"):
        if actor is not None and not permissions.can_change(actor, company):
            result.skipped += 1
            continue
        company_delete(company=company, actor=actor)
        result.changed += 1
    result.skipped += len(set(company_ids)) - result.changed - result.skipped
    return result


# --- per-user list settings


def saved_view_create(*, user: AbstractBaseUser, entity: str, name: str, query: str) -> SavedView:
    """Save (or overwrite, by name) a user's view of a list."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": ["Give the view a name."]})
    view, _ = SavedView.objects.update_or_create(
        user=user, entity=entity, name=name, defaults={"query": query.lstrip("?")[:2000]}
    )
    return view


def saved_view_delete(*, user: AbstractBaseUser, view_id: int) -> None:
    # Scoped to the owner: another user's view id deletes nothing.
    SavedView.objects.filter(user=user, pk=view_id).delete()


def list_columns_set(*, user: AbstractBaseUser, entity: str, columns: list[str]) -> ListColumns:
    row, _ = ListColumns.objects.update_or_create(user=user, entity=entity, defaults={"columns": columns})
    return row


# --- shared


def _locked[M: models.Model](model: type[M], pk: int) -> M:
    instance = model.objects.select_for_update().filter(pk=pk).first()
    if instance is None:  # deleted by someone else since it was read
        raise NotFound(f"{model._meta.verbose_name.capitalize()} {pk} does not exist.")
    return instance


def _record_changes(
    *, entity: str, instance: models.Model, before: dict[str, Any], changed: list[str], actor: Actor
) -> None:
    """Field history: one row per changed column, one per changed custom field key."""
    FieldChange.objects.bulk_create(
        FieldChange(entity=entity, object_id=instance.pk, field=f, old_value=o, new_value=n, actor=actor)
        for f, o, n in _field_diffs(instance, before, changed)
    )
    _changed(entity, [instance.pk])


def _field_diffs(
    instance: models.Model, before: dict[str, Any], changed: list[str]
) -> list[tuple[str, Any, Any]]:
    """(field, old, new) for each changed column; custom fields give one per changed key
    (`custom_fields.<key>`), so the history says which extra field changed."""
    diffs = []
    for name in changed:
        old, new = before[name], _current(instance, name)
        if name != "custom_fields":
            diffs.append((name, old, new))
            continue
        old, new = old or {}, new or {}
        diffs += [
            (f"custom_fields.{key}", old.get(key), new.get(key))
            for key in sorted(set(old) | set(new))
            if old.get(key) != new.get(key)
        ]
    return diffs


def _changed(entity: str, pks: list[int]) -> None:
    """Tell the CONTACT_CHANGE_HOOKS whose data changed: the contacts, or a company's contacts
    (segments read company fields)."""
    if entity == "contact":
        changes.contacts_changed(contact_ids=pks)
    elif entity == "company":
        people = Contact.objects.filter(company_id__in=pks, merged_into__isnull=True)
        changes.contacts_changed(contact_ids=people.values_list("pk", flat=True))


def _check_field_names(fields: dict[str, Any], allowed: frozenset[str]) -> None:
    if unknown := set(fields) - allowed:
        raise TypeError(f"unknown or read-only fields: {', '.join(sorted(unknown))}")


def _clean_common(model: type[models.Model], instance: models.Model, name: str, value: Any) -> Any:
    """Owner, custom fields and plain text columns, the same on contacts and companies."""
    if name == "owner":
        if value is not None and not isinstance(value, AbstractBaseUser):
            raise ValidationError("Expected a user.", code="invalid")
        return value
    if name == "custom_fields":
        entity = "contact" if model is Contact else "company"
        return custom_fields.clean_values(entity=entity, current=instance.custom_fields, values=value)
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValidationError("Expected text.", code="invalid")
    # Field.clean checks max_length and blank=False (a company needs a name).
    return model._meta.get_field(name).clean(ensure_storable_text(value.strip()), instance)


def _str_or_none(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValidationError("Expected text.", code="invalid")
    return value


def _current(instance: models.Model, name: str) -> Any:
    field = instance._meta.get_field(name)
    if field.is_relation:
        return getattr(instance, field.attname)
    return getattr(instance, name)


def _key(value: Any) -> Any:
    """Compare related objects by primary key, so an unchanged owner is not written."""
    return value.pk if isinstance(value, models.Model) else value


def _save_in_savepoint(instance: models.Model, update_fields: list[str] | None) -> None:
    # A savepoint, so a refused row rolls back alone and the caller's transaction stays usable.
    with transaction.atomic():
        instance.save(update_fields=update_fields)


def _constraint_name(exc: IntegrityError) -> str | None:
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None)


# --- helpers for bulk writers (imports, merges): the same validation and history, batched writes


def contact_prepare(*, contact: Contact, fields: dict[str, Any]) -> list[str]:
    """Normalise and validate `fields` onto `contact` without saving it; return the changed names.

    CSV imports write in batches but must refuse exactly what contact_create/contact_update refuse,
    so they validate each row here. Raises ValidationError keyed by field name.
    """
    _check_field_names(fields, CONTACT_FIELDS)
    return _apply_contact_fields(contact, fields)


def company_prepare(*, company: Company, fields: dict[str, Any]) -> list[str]:
    """contact_prepare for companies: validate onto `company` without saving."""
    _check_field_names(fields, COMPANY_FIELDS)
    return _apply_company_fields(company, fields)


def field_changes_record(
    *, entity: str, instance: models.Model, before: dict[str, Any], changed: list[str], actor: Actor
) -> None:
    _record_changes(entity=entity, instance=instance, before=before, changed=changed, actor=actor)


def field_changes_record_many(
    *, entity: str, changes: list[tuple[models.Model, dict[str, Any], list[str]]], actor: Actor
) -> None:
    """Field history of many records in one INSERT: (instance, values before, changed names) each."""
    rows = [
        (instance.pk, *diff)
        for instance, before, changed in changes
        for diff in _field_diffs(instance, before, changed)
    ]
    FieldChange.objects.bulk_create(
        FieldChange(entity=entity, object_id=pk, field=f, old_value=o, new_value=n, actor=actor)
        for pk, f, o, n in rows
    )
    _changed(entity, sorted({pk for pk, *_ in rows}))


# --- custom field definitions (Admin only)


CUSTOM_FIELDS_ADMIN_ONLY = "Only Admins manage custom fields."


def _clean_choices(field_type: str, choices: list[str] | None) -> list[str]:
    if field_type != CustomFieldType.CHOICE:
        return []
    cleaned: list[str] = []
    for choice in choices or []:
        choice = choice.strip()
        if len(choice) > 100:
            raise ValidationError({"choices": [f"Choice {choice[:20]!r}… is longer than 100 characters."]})
        if choice and choice.lower() not in {c.lower() for c in cleaned}:
            cleaned.append(choice)
    if not cleaned:
        raise ValidationError({"choices": ["A choice field needs at least one choice."]})
    return cleaned


@transaction.atomic
def custom_field_create(
    *, actor: Actor, entity: str, label: str, field_type: str, choices: list[str] | None = None
) -> CustomField:
    """Add a field; its key is a slug of the label (made unique with a suffix), fixed from then on
    because imports, exports and API clients refer to it."""
    ensure_admin(actor, message=CUSTOM_FIELDS_ADMIN_ONLY)
    label = (label or "").strip()
    errors: dict[str, list[str]] = {}
    if not label:
        errors["label"] = ["Give the field a label."]
    if entity not in CustomFieldEntity.values:
        errors["entity"] = [f"{entity!r} is not contact or company."]
    if field_type not in CustomFieldType.values:
        errors["field_type"] = [f"{field_type!r} is not a field type."]
    if errors:
        raise ValidationError(errors)
    choices = _clean_choices(field_type, choices)
    base = slugify(label).replace("-", "_")[:40] or "field"
    if base in CONTACT_FIELDS | COMPANY_FIELDS:
        base = f"{base}_custom"  # a CSV column or API key must never be ambiguous with a column
    taken = set(CustomField.objects.filter(entity=entity, key__startswith=base).values_list("key", flat=True))
    key, n = base, 2
    while key in taken:
        key, n = f"{base}_{n}", n + 1
    last = CustomField.objects.filter(entity=entity).order_by("-position").values_list("position", flat=True)
    return CustomField.objects.create(
        entity=entity,
        key=key,
        label=label[:100],
        field_type=field_type,
        choices=choices,
        position=(last.first() or 0) + 1,
    )


@transaction.atomic
def custom_field_update(
    *, actor: Actor, field: CustomField, label: str, choices: list[str] | None, position: int
) -> CustomField:
    """Label, choices and position change; key and type do not (stored values depend on them).
    Removing a choice leaves values already stored; they show until someone edits them."""
    ensure_admin(actor, message=CUSTOM_FIELDS_ADMIN_ONLY)
    field = _locked(CustomField, field.pk)
    label = (label or "").strip()
    if not label:
        raise ValidationError({"label": ["Give the field a label."]})
    if not 0 <= position <= MAX_CUSTOM_FIELD_POSITION:
        raise ValidationError({"position": [f"Position is a number from 0 to {MAX_CUSTOM_FIELD_POSITION}."]})
    field.label = label[:100]
    field.choices = _clean_choices(field.field_type, choices)
    field.position = position
    field.save(update_fields=["label", "choices", "position"])
    return field


@transaction.atomic
def custom_field_delete(*, actor: Actor, field: CustomField) -> None:
    """Delete the definition only: values stay in each record's JSON (no table rewrite, and a field
    re-created with the same key shows them again) but are no longer shown or validated."""
    ensure_admin(actor, message=CUSTOM_FIELDS_ADMIN_ONLY)
    CustomField.objects.filter(pk=field.pk).delete()


# --- erasure (privacy): removing what the contacts app holds on a person besides the contact row


@transaction.atomic
def field_changes_delete(*, contact_ids: list[int]) -> int:
    """The change history of these contacts (old and new values are the person's data)."""
    deleted, _ = FieldChange.objects.filter(
        entity=CustomFieldEntity.CONTACT, object_id__in=contact_ids
    ).delete()
    return deleted


def _like_any(values: list[str]) -> list[str]:
    escaped = (v.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") for v in values)
    return [f"%{v}%" for v in escaped]


@transaction.atomic
def import_row_errors_delete_mentioning(*, values: list[str]) -> int:
    """Rejected import rows holding one of these values (an email) in any cell, ignoring case."""
    values = [v for v in values if v]
    if not values:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM contacts_importrowerror"
            ' WHERE array_to_string("values", chr(31)) ILIKE ANY(%s::text[])',
            [_like_any(values)],
        )
        return cursor.rowcount


@transaction.atomic
def contact_merges_delete(*, contact_ids: list[int]) -> int:
    """Merge log rows where these contacts won or lost (their snapshots hold the person's values)."""
    deleted, _ = ContactMerge.objects.filter(
        models.Q(winner_id__in=contact_ids) | models.Q(loser_id__in=contact_ids)
    ).delete()
    return deleted


# --- the stitching worker's write path (identity calls these; contacts imports no higher app)

# The contact columns the stitching worker writes (besides company_id and updated_at).
TRACKED_COLUMNS = [
    "first_name",
    "last_name",
    "email",
    "phone",
    "title",
    "lifecycle_stage",
    "traits",
    "first_seen",
    "last_seen",
    "attribution",
    "consent",
    "is_identified",
]


def contacts_lock_ids(*, contact_ids: Collection[int]) -> None:
    """Lock these contact rows in primary key order (the stitching worker's lock order), inside
    the caller's transaction. Raw SQL: only the lock is wanted, no row is read into Python."""
    if contact_ids:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM contacts_contact WHERE id = ANY(%s::bigint[]) ORDER BY id FOR UPDATE",
                [sorted(contact_ids)],
            )


def contact_ids_reserve(*, count: int) -> list[int]:
    """`count` new contact primary keys from the table's sequence, ascending: the stitching
    worker numbers a batch's new visitors as it meets them and inserts them together
    (contacts_tracked_create). A reserved id left unused is a gap, as a rolled-back insert
    leaves one."""
    if count <= 0:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence('contacts_contact', 'id')) FROM generate_series(1, %s)",
            [count],
        )
        return sorted(row[0] for row in cursor.fetchall())


def contacts_tracked_create(*, contacts: Sequence[Any]) -> None:
    """The stitching worker's insert path: contacts it made for visitors nobody had seen (ids
    from contact_ids_reserve), in one statement, as they stand. No validation, permission check
    or change history, as in contacts_tracked_save. Raw SQL for the same reason: bulk_create
    binds every column of every row on the client, and psycopg splitting that query was most
    of its time (cProfile); here the rows travel as one jsonb parameter. `contacts` are Contacts
    or any objects with their attributes (the worker's own rows: identity.services.stitching)."""
    if not contacts:
        return
    now = timezone.now()
    rows = []
    for contact in sorted(contacts, key=lambda contact: contact.pk):
        contact.created_at = contact.updated_at = now
        row = {name: getattr(contact, name) for name in TRACKED_COLUMNS}
        row.update(
            id=contact.pk,
            company_id=contact.company_id,
            owner_id=contact.owner_id,
            merged_into_id=contact.merged_into_id,
            tags=contact.tags,
            custom_fields=contact.custom_fields,
        )
        rows.append(row)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO contacts_contact (id, first_name, last_name, email, phone, title, company_id,
                owner_id, lifecycle_stage, tags, custom_fields, traits, first_seen, last_seen,
                attribution, consent, is_identified, merged_into_id, created_at, updated_at)
            SELECT id, first_name, last_name, email, phone, title, company_id, owner_id,
                lifecycle_stage, tags, custom_fields, traits, first_seen, last_seen, attribution,
                consent, is_identified, merged_into_id, %s, %s
            FROM jsonb_to_recordset(%s::jsonb) AS v(
                id bigint, first_name text, last_name text, email text, phone text, title text,
                company_id bigint, owner_id int, lifecycle_stage text, tags text[],
                custom_fields jsonb, traits jsonb, first_seen timestamptz, last_seen timestamptz,
                attribution jsonb, consent jsonb, is_identified boolean, merged_into_id bigint)
            ORDER BY id
            """,
            [now, now, _tracked_json(rows)],
        )
    for contact in contacts:
        if (state := getattr(contact, "_state", None)) is not None:  # a Contact (the worker's rows have none)
            state.adding = False
            state.db = "default"


def contacts_tracked_save(*, contacts: Sequence[Any]) -> None:
    """The stitching worker's write path: one UPDATE of the tracked columns (TRACKED_COLUMNS,
    company_id, updated_at) for a batch's changed contacts, which the caller's transaction has
    already locked. No validation, permission check or change history: the worker derived the
    values from events, and segments learn of the change through identity's ProfileUpdate rows.

    Raw SQL because of speed: the rows travel as one jsonb parameter, where Django's bulk_update
    builds a CASE per column and row, which cost ~1.2 s per 500-event batch in Python alone
    (cProfile)."""
    now = timezone.now()
    rows = []
    for contact in contacts:
        contact.updated_at = now
        row = {name: getattr(contact, name) for name in TRACKED_COLUMNS}
        row.update(id=contact.pk, company_id=contact.company_id)
        rows.append(row)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE contacts_contact AS c SET
                first_name = v.first_name, last_name = v.last_name, email = v.email, phone = v.phone,
                title = v.title, company_id = v.company_id, lifecycle_stage = v.lifecycle_stage,
                traits = v.traits, first_seen = v.first_seen, last_seen = v.last_seen,
                attribution = v.attribution, consent = v.consent, is_identified = v.is_identified,
                updated_at = %s
            FROM jsonb_to_recordset(%s::jsonb) AS v(
                id bigint, first_name text, last_name text, email text, phone text, title text,
                company_id bigint, lifecycle_stage text, traits jsonb, first_seen timestamptz,
                last_seen timestamptz, attribution jsonb, consent jsonb, is_identified boolean)
            WHERE c.id = v.id
            """,
            [now, _tracked_json(rows)],
        )


def _tracked_json(rows: list[dict]) -> str:
    """The rows as one JSON parameter: orjson (several times json's speed), json for what orjson
    refuses (an integer past 64 bits in traits, which jsonb keeps exactly)."""
    try:
        return orjson.dumps(rows).decode()
    except TypeError:
        return json.dumps(rows, default=_tracked_json_default)


def _tracked_json_default(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot store {type(value).__name__} in a contact row")
