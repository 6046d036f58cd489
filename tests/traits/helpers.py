"""Trait definitions and values for the traits tests."""

from typing import Any

from traits import selectors
from traits.models import TraitDefinition


def make_trait(key: str, kind: str = "count", **fields: Any) -> TraitDefinition:
    fields.setdefault("name", key.replace("_", " ").capitalize())
    if "property" in fields:
        fields["property_key"] = fields.pop("property")
    return TraitDefinition.objects.create(key=key, kind=kind, **fields)


def values_of(contact) -> dict[str, Any]:
    return selectors.contact_traits(contact.pk)


def all_values() -> dict[tuple[int, int], tuple]:
    """Every stored value row, for comparing two computations."""
    from traits.models import CompanyTraitValue, TraitValue

    rows = {
        ("c", r.trait_id, r.contact_id): (r.number, r.text, tuple(r.items or ()), r.expires_at, r.company_id)
        for r in TraitValue.objects.all()
    }
    rows.update({("a", r.trait_id, r.company_id): (r.number,) for r in CompanyTraitValue.objects.all()})
    return rows
