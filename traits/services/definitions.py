"""Trait definitions: validation (one set of rules for the form and the API), create, update,
delete. Saving queues a full recompute of the trait (traits.tasks.traits_recompute) after commit;
until it has run, `computed_at` is None and the settings page says the values are being computed."""

import math
import re
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from traits.models import ACCOUNT_KINDS, NUMBER_KINDS, EventType, TraitDefinition, TraitKind
from traits.permissions import ensure_can_manage
from traits.tasks import traits_recompute as traits_recompute_task

KEY = re.compile(r"^[a-z][a-z0-9_]{0,49}$")
MAX_CONDITIONS = 10
MAX_WINDOW_DAYS = 3650
MAX_TEXT = 200
CONDITION_OPERATORS = {"eq", "neq", "contains", "not_contains", "gt", "gte", "lt", "lte"}
NUMBER_OPERATORS = {"gt", "gte", "lt", "lte"}
FIELDS = (
    "key", "name", "kind", "event_type", "event_name", "property", "conditions", "window_days", "source",
)  # fmt: skip


def _text(value: Any, *, field: str, errors: dict, limit: int = MAX_TEXT, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        errors.setdefault(field, []).append("Expected text.")
        return ""
    value = value.strip()
    if "\x00" in value:
        errors.setdefault(field, []).append("Contains a NUL character.")
    elif len(value) > limit:
        errors.setdefault(field, []).append(f"At most {limit} characters.")
    elif required and not value:
        errors.setdefault(field, []).append("This field is required.")
    return value


def _conditions(raw: Any, errors: dict) -> list[dict]:
    if raw in (None, ""):
        return []
    if not isinstance(raw, list):
        errors.setdefault("conditions", []).append("Expected a list of {property, operator, value}.")
        return []
    if len(raw) > MAX_CONDITIONS:
        errors.setdefault("conditions", []).append(f"At most {MAX_CONDITIONS} conditions.")
        return []
    cleaned = []
    for i, item in enumerate(raw, start=1):
        where = f"Condition {i}"
        if not isinstance(item, dict) or set(item) - {"property", "operator", "value"}:
            errors.setdefault("conditions", []).append(f"{where}: expected {{property, operator, value}}.")
            continue
        key = item.get("property")
        if not isinstance(key, str) or not key.strip() or len(key) > 100 or "\x00" in key:
            errors.setdefault("conditions", []).append(f"{where}: name the property (1 to 100 characters).")
            continue
        op = item.get("operator")
        if op not in CONDITION_OPERATORS:
            allowed = ", ".join(sorted(CONDITION_OPERATORS))
            errors.setdefault("conditions", []).append(f"{where}: the operator is one of {allowed}.")
            continue
        value = item.get("value")
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        if op in NUMBER_OPERATORS and not (is_number and math.isfinite(value) and abs(value) < 1e15):
            errors.setdefault("conditions", []).append(f"{where}: {op} compares with a number.")
            continue
        if op in ("contains", "not_contains") and not (isinstance(value, str) and value):
            errors.setdefault("conditions", []).append(f"{where}: {op.replace('_', ' ')} needs some text.")
            continue
        if not isinstance(value, str | int | float | bool) or (is_number and not math.isfinite(value)):
            errors.setdefault("conditions", []).append(f"{where}: the value is text, a number or true/false.")
            continue
        if isinstance(value, str) and (len(value) > MAX_TEXT or "\x00" in value):
            errors.setdefault("conditions", []).append(
                f"{where}: the value is at most {MAX_TEXT} characters."
            )
            continue
        cleaned.append({"property": key.strip(), "operator": op, "value": value})
    return cleaned


def trait_definition_clean(
    *, values: dict[str, Any], instance: TraitDefinition | None = None
) -> dict[str, Any]:
    """The definition's fields, checked together; ValidationError({field: [messages]}) if bad."""
    errors: dict[str, list[str]] = {}
    stored = {"property": "property_key", "source": "source_id"}
    data = {
        name: values.get(name, getattr(instance, stored.get(name, name), None) if instance else None)
        for name in FIELDS
    }
    key = _text(data["key"], field="key", errors=errors, limit=50, required=True)
    if key and not KEY.match(key):
        errors.setdefault("key", []).append(
            "Lower-case letters, digits and _, starting with a letter "
            "(it names the trait in segments and merge fields)."
        )
    elif key and TraitDefinition.objects.filter(key=key).exclude(pk=getattr(instance, "pk", None)).exists():
        errors.setdefault("key", []).append("Another trait has this key.")
    name = _text(data["name"], field="name", errors=errors, limit=100, required=True)
    kind = data["kind"]
    if kind not in TraitKind.values:
        errors.setdefault("kind", []).append(f"Choose one of {', '.join(TraitKind.values)}.")
    event_type = data["event_type"] or ""
    if event_type not in EventType.values:
        errors.setdefault("event_type", []).append("Choose track, page, screen or any.")
    event_name = _text(data["event_name"], field="event_name", errors=errors)
    prop = _text(data["property"], field="property", errors=errors, limit=100)
    conditions = _conditions(data["conditions"], errors)
    window = data["window_days"]
    if window in ("", 0):
        window = None
    if window is not None and (type(window) is not int or not 1 <= window <= MAX_WINDOW_DAYS):
        errors.setdefault("window_days", []).append(
            f"A whole number of days from 1 to {MAX_WINDOW_DAYS}, or empty for ever."
        )
    source = data["source"]
    source_id = source.pk if isinstance(source, TraitDefinition) else source
    if kind in ACCOUNT_KINDS:
        source_row = TraitDefinition.objects.filter(pk=source_id).first() if type(source_id) is int else None
        if source_row is None or source_row.is_account:
            errors.setdefault("source", []).append("Choose the contact trait this company trait rolls up.")
        elif kind != "account_count" and source_row.kind not in NUMBER_KINDS:
            errors.setdefault("source", []).append(
                "A sum or maximum rolls up a number trait (a counter or an aggregation)."
            )
        elif instance is not None and source_row.pk == instance.pk:
            errors.setdefault("source", []).append("A trait cannot roll up itself.")
        # Company traits read contact values only: events settings do not apply.
        event_type, event_name, prop, conditions, window = "", "", "", [], None
    else:
        source_id = None
        if kind in TraitKind.values and kind != "count" and not prop:
            errors.setdefault("property", []).append("Name the event property this trait reads.")
        if kind == "count":
            prop = ""
    if instance is not None and kind in ACCOUNT_KINDS and instance.rollups.exists():
        errors.setdefault("kind", []).append("Company traits roll this trait up: it stays a contact trait.")
    if errors:
        raise ValidationError(errors)
    return {
        "key": key,
        "name": name,
        "kind": kind,
        "event_type": event_type,
        "event_name": event_name,
        "property_key": prop,
        "conditions": conditions,
        "window_days": window,
        "source_id": source_id,
    }


def _recompute_after_commit(trait: TraitDefinition) -> None:
    transaction.on_commit(lambda: traits_recompute_task.delay([trait.pk]))


@transaction.atomic
def trait_definition_create(*, actor: AbstractBaseUser | None, values: dict[str, Any]) -> TraitDefinition:
    ensure_can_manage(actor)
    cleaned = trait_definition_clean(values=values)
    trait = TraitDefinition.objects.create(**cleaned, created_by=actor if actor and actor.pk else None)
    _recompute_after_commit(trait)
    return trait


@transaction.atomic
def trait_definition_update(
    *, actor: AbstractBaseUser | None, trait: TraitDefinition, values: dict[str, Any]
) -> TraitDefinition:
    ensure_can_manage(actor)
    trait = TraitDefinition.objects.select_for_update().get(pk=trait.pk)
    cleaned = trait_definition_clean(values=values, instance=trait)
    for name, value in cleaned.items():
        setattr(trait, name, value)
    trait.computed_at = None
    trait.save()
    _recompute_after_commit(trait)
    return trait


def trait_recompute_request(*, actor: AbstractBaseUser | None, trait: TraitDefinition) -> None:
    """ "Recompute now" (Settings → Traits): the full recompute of one trait in a worker, queued after
    the caller's commit (a refused or rolled-back request sends nothing)."""
    ensure_can_manage(actor)
    _recompute_after_commit(trait)


@transaction.atomic
def trait_definition_delete(*, actor: AbstractBaseUser | None, trait: TraitDefinition) -> None:
    """Delete a trait and its values. A contact trait that company traits roll up cannot go
    before them (ValidationError)."""
    ensure_can_manage(actor)
    if trait.rollups.exists():
        names = ", ".join(trait.rollups.values_list("name", flat=True))
        raise ValidationError(f"Company traits roll this trait up ({names}): delete them first.")
    trait.delete()
