"""Reads of computed traits: definitions, a contact's or company's values, the contact list's
trait columns (settings.CONTACT_LIST_COLUMN_HOOKS) and the merge-field selector."""

import re
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db.models import Exists, F, FilteredRelation, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Coalesce

from contacts.selectors import ListColumn
from core.errors import NotFound
from core.pagination import SplitKey
from traits.models import (
    ACCOUNT_KINDS,
    LIST_KINDS,
    NUMBER_KINDS,
    ZERO_KINDS,
    CompanyTraitValue,
    TraitDefinition,
    TraitValue,
)
from traits.permissions import ensure_can_read


def trait_list(*, user: AbstractBaseUser | None) -> list[TraitDefinition]:
    ensure_can_read(user)
    return list(TraitDefinition.objects.select_related("source").order_by("name", "pk"))


def trait_get(*, user: AbstractBaseUser | None, trait_id: int) -> TraitDefinition:
    ensure_can_read(user)
    trait = TraitDefinition.objects.select_related("source").filter(pk=trait_id).first()
    if trait is None:
        raise NotFound(f"Trait {trait_id} does not exist.")
    return trait


def _value(trait: TraitDefinition, row: Any) -> Any:
    """The trait's value from its stored row (None: no row); without a row counters are 0 and
    unique lists empty."""
    if row is None:
        return 0 if trait.kind in ZERO_KINDS else [] if trait.kind in LIST_KINDS else None
    if trait.kind in LIST_KINDS:
        return list(row.items or [])
    if trait.kind in NUMBER_KINDS or trait.kind in ACCOUNT_KINDS:
        number = row.number
        return int(number) if number is not None and number.is_integer() else number
    return row.text


def display(value: Any) -> str:
    """A value as text (callers escape it)."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


@dataclass
class TraitRow:
    trait: TraitDefinition
    value: Any
    computed_at: Any

    @property
    def text(self) -> str:
        return display(self.value)


def contact_trait_rows(*, user: AbstractBaseUser | None, contact_id: int) -> list[TraitRow]:
    """Every contact-level trait with this contact's value, by name (one query for the values)."""
    ensure_can_read(user)
    traits = [t for t in TraitDefinition.objects.order_by("name", "pk") if not t.is_account]
    rows = {r.trait_id: r for r in TraitValue.objects.filter(contact_id=contact_id)}
    return [
        TraitRow(
            trait=t, value=_value(t, rows.get(t.pk)), computed_at=getattr(rows.get(t.pk), "computed_at", None)
        )
        for t in traits
    ]


def company_trait_rows(*, user: AbstractBaseUser | None, company_id: int) -> list[TraitRow]:
    ensure_can_read(user)
    traits = [t for t in TraitDefinition.objects.order_by("name", "pk") if t.is_account]
    rows = {r.trait_id: r for r in CompanyTraitValue.objects.filter(company_id=company_id)}
    return [
        TraitRow(
            trait=t,
            value=_value(t, rows.get(t.pk)) if t.pk in rows else (0 if t.kind == "account_count" else None),
            computed_at=getattr(rows.get(t.pk), "computed_at", None),
        )
        for t in traits
    ]


def contact_traits(contact_id: int) -> dict[str, Any]:
    """{trait key: value} of a contact, for merge fields (the email issue's templates): numbers
    as int/float, text as str, unique lists as lists, counters without events 0, others None.
    No permission check: the caller (a send to this contact) decides who sees the result."""
    traits = [t for t in TraitDefinition.objects.order_by("pk") if not t.is_account]
    rows = {r.trait_id: r for r in TraitValue.objects.filter(contact_id=contact_id)}
    return {t.key: _value(t, rows.get(t.pk)) for t in traits}


# --- the contact list's trait columns (settings.CONTACT_LIST_COLUMN_HOOKS)

# Sorts put contacts without a value last in descending order (first ascending): NOT NULL keys.
_NO_NUMBER = -1e300
_FILTER = re.compile(r"^\s*(>=|<=|!=|>|<|=)?\s*(.*?)\s*$")


class TraitFilterField(forms.CharField):
    """A list filter on a trait: "> 3", "<= 10", "= 5", "5" for numbers; text contains, or
    "= exact" for text."""

    def __init__(self, *, number: bool, **kwargs):
        self.number = number
        help_text = 'e.g. "> 3", "<= 10" or "5"' if number else 'text it contains, or "= exact"'
        super().__init__(max_length=200, help_text=help_text, **kwargs)
        self.widget.attrs["placeholder"] = help_text

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return None
        op, rest = _FILTER.match(value).groups()
        if self.number:
            try:
                number = float(rest)
            except ValueError:
                raise ValidationError(
                    f"{self.label}: expected a number, optionally after >, >=, <, <=, = or !=."
                ) from None
            if number != number or abs(number) > 1e15:
                raise ValidationError(f"{self.label}: number out of range.")
            return (op or "=", number)
        if not rest:
            raise ValidationError(f"{self.label}: give some text.")
        return ("=" if op == "=" else "contains", rest)


_LOOKUPS = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte", "=": "exact", "!=": "exact"}


def _column(trait: TraitDefinition) -> ListColumn:
    key = f"trait_{trait.key}"
    join = f"_trait_join_{trait.pk}"
    number = trait.kind in NUMBER_KINDS
    field = "number" if number else "text"
    zero = trait.kind in ZERO_KINDS

    def annotate(qs: QuerySet) -> QuerySet:
        if key in qs.query.annotations:
            return qs
        relation = FilteredRelation("trait_values", condition=Q(trait_values__trait_id=trait.pk))
        value = Coalesce(F(f"{join}__{field}"), Value(0.0)) if zero else F(f"{join}__{field}")
        return qs.annotate(**{join: relation}).annotate(**{key: value})

    def filter_(qs: QuerySet, cleaned: tuple[str, Any]) -> QuerySet:
        op, value = cleaned
        if number:
            q = Q(**{f"{key}__{_LOOKUPS[op]}": value})
            return qs.exclude(q) if op == "!=" else qs.filter(q)
        return qs.filter(**{f"{key}__{'exact' if op == '=' else 'icontains'}": value})

    sort = Coalesce(F(key), Value(_NO_NUMBER)) if number else Coalesce(F(key), Value(""))
    # The same order, driven by the (trait, number, contact) / (trait, text) indexes: a contact
    # without a value sorts as 0 for counters (what the cell shows), below every value otherwise.
    missing = (0.0 if zero else _NO_NUMBER) if number else ""
    others = TraitValue.objects.filter(
        contact=OuterRef("pk"), trait_id=trait.pk, **{f"{field}__isnull": False}
    )
    split = SplitKey(
        value=F(f"{join}__{field}"),
        missing=missing,
        missing_q=~Exists(others.exclude(**{field: missing})),
    )
    return ListColumn(
        key=key,
        label=trait.name,
        annotate=annotate,
        sort=sort,
        split=split,
        render=lambda value: display(
            int(value) if isinstance(value, float) and value.is_integer() else value
        ),
        filter_field=lambda: TraitFilterField(number=number, label=trait.name),
        filter=filter_,
    )


def contact_list_columns() -> list[ListColumn]:
    """The CONTACT_LIST_COLUMN_HOOKS provider: one column per contact-level trait."""
    return [
        _column(t) for t in TraitDefinition.objects.exclude(kind__in=ACCOUNT_KINDS).order_by("name", "pk")
    ]
