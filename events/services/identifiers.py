"""How phone numbers and external ids are written when identifiers are compared. Shared by
identity stitching, which stores them (`identity.Identity.value`), and the suppression list at
ingestion (`events.ingest.suppression`), which must recognise an erased person's phone number or
external id in a later message written differently ("+1 (415) 555-0100" against the stored
"+14155550100"). It lives in events, the lowest app that uses it: identity may import events,
not the other way round; identity reaches it through events' front door (`events.services`)."""

from typing import Any

import phonenumbers
from django.conf import settings

VALUE_MAX = 300


def _text(raw: Any) -> str | None:
    if raw is None or isinstance(raw, dict | list | bool):
        return None
    value = str(raw).strip()
    return value or None


def phone_e164(raw: Any) -> str | None:
    """A valid phone number in E.164, or None (absent, not a scalar, not a valid number).
    Numbers without a country code are read in settings.IDENTITY_PHONE_REGION, when set."""
    value = _text(raw)
    if value is None:
        return None
    try:
        number = phonenumbers.parse(value, getattr(settings, "IDENTITY_PHONE_REGION", None) or None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[:VALUE_MAX]


def external_ids(context: Any) -> list[str]:
    """context.externalIds ([{"id": ..., "type": ...}]) as "<type, lower-cased>:<id>"."""
    found = []
    items = context.get("externalIds") if isinstance(context, dict) else None
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        kind, value = _text(item.get("type")), _text(item.get("id"))
        if kind and value:
            found.append(f"{kind[:VALUE_MAX].lower()}:{value[:VALUE_MAX]}"[:VALUE_MAX])
    return found
