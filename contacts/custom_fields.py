"""Validation of custom field values against the Admin's definitions."""

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError

from contacts import selectors
from contacts.models import CustomField, CustomFieldType
from core.text import ensure_storable_text

MAX_TEXT = 1000
_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off"}


def clean_value(definition: CustomField, value: Any) -> Any:
    """One value as it will be stored (a JSON scalar), or None to clear it."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    kind = definition.field_type
    if kind == CustomFieldType.TEXT:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ValidationError("Expected text.", code="invalid")
        text = ensure_storable_text(str(value).strip())
        if len(text) > MAX_TEXT:
            raise ValidationError(f"At most {MAX_TEXT} characters.", code="max_length")
        return text
    if kind == CustomFieldType.NUMBER:
        if isinstance(value, bool):
            raise ValidationError("Expected a number.", code="invalid")
        try:
            number = Decimal(str(value).strip().replace(",", ""))
        except InvalidOperation:
            raise ValidationError(f"{str(value)[:40]!r} is not a number.", code="invalid") from None
        if not number.is_finite():
            raise ValidationError("Expected a finite number.", code="invalid")
        return int(number) if number == number.to_integral_value() else float(number)
    if kind == CustomFieldType.DATE:
        if isinstance(value, date):
            return value.isoformat()
        try:
            return date.fromisoformat(str(value).strip()[:10]).isoformat()
        except ValueError:
            raise ValidationError(
                f"{str(value)[:40]!r} is not a date (YYYY-MM-DD).", code="invalid"
            ) from None
    if kind == CustomFieldType.BOOLEAN:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValidationError(f"{str(value)[:40]!r} is not yes or no.", code="invalid")
    if kind == CustomFieldType.CHOICE:
        text = str(value).strip()
        for choice in definition.choices:
            if choice.lower() == text.lower():
                return choice
        raise ValidationError(
            f"{text[:40]!r} is not one of: {', '.join(definition.choices)}.", code="invalid_choice"
        )
    raise ValidationError(f"Unknown field type {kind!r}.", code="invalid")


def clean_values(*, entity: str, current: dict, values: Any) -> dict:
    """Merge `values` into `current` (a key set to None or "" is cleared). Unknown keys and bad
    values raise one ValidationError naming each key."""
    if not isinstance(values, dict):
        raise ValidationError("Custom fields must be an object of key to value.", code="invalid")
    by_key = {d.key: d for d in selectors.custom_field_definitions(entity=entity)}
    errors: list[str] = []
    merged = dict(current or {})
    for key, value in values.items():
        definition = by_key.get(key)
        if definition is None:
            errors.append(f"{key}: no such custom field")
            continue
        try:
            cleaned = clean_value(definition, value)
        except ValidationError as exc:
            errors.append(f"{key}: {' '.join(exc.messages)}")
            continue
        if cleaned is None:
            merged.pop(key, None)
        else:
            merged[key] = cleaned
    if errors:
        raise ValidationError(errors, code="invalid")
    return merged
