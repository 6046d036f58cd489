"""Segment condition kinds over other apps' data, beside the compiler's built-in ones.

Each entry of CONDITION_KINDS maps a leaf's ``type`` to a `compiler.ConditionKind`: how to parse
the leaf (no database reads), compile it to a Q over Contact, describe it, and what triggers it.
Adding a kind is a function or two here (or in a module of their own) and one line in the dict.
The shared helpers: `compiler.DefinitionError`, `compiler._key` / `compiler._scalar` (value
parsing as the built-in kinds do), `compiler.Context` (today, the realtime scope).

- ``computed_trait``: ``{"type": "computed_trait", "trait": "<key>", "operator", "value"}``: a
  computed trait's stored value (traits app). Number traits take eq/neq/gt/gte/lt/lte/is_set/
  is_not_set (counters without events count 0); text traits eq/neq/contains/not_contains/
  starts_with/is_set/is_not_set; unique lists contains/not_contains (holds the value)/is_set/
  is_not_set. Trigger "profile": the drain refreshes traits before segments
  (settings.PROFILE_UPDATE_DERIVED_HOOKS), and window expiry marks the contacts it changed.
- ``score``: ``{"type": "score", "model": <id>, "op": "gte|gt|lte|lt", "value": N}``: a lead
  score (scoring app), in `segments.definition.score_kind`.
"""

from dataclasses import dataclass
from typing import Any

from django.db.models import Exists, OuterRef, Q

from segments.definition import compiler
from segments.definition.compiler import ConditionKind
from segments.definition.score_kind import SCORE_KIND
from traits.models import LIST_KINDS, NUMBER_KINDS, ZERO_KINDS, TraitDefinition, TraitValue

TRAIT_OPS = {
    "eq",
    "neq",
    "gt",
    "gte",
    "lt",
    "lte",
    "contains",
    "not_contains",
    "starts_with",
    "is_set",
    "is_not_set",
}
_NUMBER_OPS = {"eq", "neq", "gt", "gte", "lt", "lte", "is_set", "is_not_set"}
_TEXT_OPS = {"eq", "neq", "contains", "not_contains", "starts_with", "is_set", "is_not_set"}
_LIST_OPS = {"contains", "not_contains", "is_set", "is_not_set"}


@dataclass(frozen=True)
class TraitTest:
    path: str
    key: str
    operator: str
    value: Any


def _trait_parse(obj: dict, path: str) -> TraitTest:
    key = compiler._key(obj.get("trait"), f"{path}.trait")
    op = obj.get("operator")
    if op not in TRAIT_OPS:
        raise compiler.DefinitionError(f"{path}.operator", f"expected one of {', '.join(sorted(TRAIT_OPS))}.")
    value = None
    if op not in ("is_set", "is_not_set"):
        value = compiler._scalar(obj.get("value"), f"{path}.value")
        if isinstance(value, bool):
            raise compiler.DefinitionError(f"{path}.value", "expected a number or text.")
        if op in ("gt", "gte", "lt", "lte") and not isinstance(value, int | float):
            raise compiler.DefinitionError(f"{path}.value", "expected a number.")
    return TraitTest(path=path, key=key, operator=op, value=value)


def _trait_for(test: TraitTest) -> TraitDefinition | None:
    return TraitDefinition.objects.filter(key=test.key).exclude(kind__startswith="account_").first()


def _trait_check(test: TraitTest) -> None:
    trait = _trait_for(test)
    if trait is None:
        keys = list(
            TraitDefinition.objects.exclude(kind__startswith="account_")
            .order_by("key")
            .values_list("key", flat=True)
        )
        raise compiler.DefinitionError(
            f"{test.path}.trait", f"there is no contact trait {test.key!r}.", allowed=keys
        )
    allowed = (
        _NUMBER_OPS if trait.kind in NUMBER_KINDS else _LIST_OPS if trait.kind in LIST_KINDS else _TEXT_OPS
    )
    if test.operator not in allowed:
        raise compiler.DefinitionError(
            f"{test.path}.operator",
            f"{test.operator} does not apply to trait {trait.key!r}.",
            allowed=sorted(allowed),
        )
    if trait.kind in NUMBER_KINDS and test.value is not None and not isinstance(test.value, int | float):
        raise compiler.DefinitionError(f"{test.path}.value", f"trait {trait.key!r} is a number.")


def _trait_compile(test: TraitTest, ctx: compiler.Context) -> Q:
    trait = _trait_for(test)
    if trait is None:  # deleted after the segment was saved: matches nobody
        return Q(pk__in=[])
    rows = TraitValue.objects.filter(trait_id=trait.pk, contact_id=OuterRef("pk"))
    if ctx.scope is not None:
        rows = rows.filter(contact_id__in=ctx.scope)
    op, value = test.operator, test.value
    has_row = Q(Exists(rows))
    if op in ("is_set", "is_not_set"):
        return has_row if op == "is_set" else ~has_row
    if trait.kind in NUMBER_KINDS:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return Q(pk__in=[])
        lookup = {"eq": "exact", "neq": "exact", "gt": "gt", "gte": "gte", "lt": "lt", "lte": "lte"}[op]
        matching = Q(Exists(rows.filter(**{f"number__{lookup}": value})))
        if op == "neq":
            matching = has_row & ~matching
        # A counter without a row is 0: contacts with no row match when 0 passes the test.
        if trait.kind in ZERO_KINDS and _holds(0, op, value):
            matching |= ~has_row
        return matching
    text = str(value)
    if trait.kind in LIST_KINDS:
        held = Q(Exists(rows.filter(items__contains=[value])))
        return ~held if op == "not_contains" else held
    lookup = {"eq": "exact", "neq": "exact", "contains": "icontains", "not_contains": "icontains"}.get(
        op, "istartswith"
    )
    held = Q(Exists(rows.filter(**{f"text__{lookup}": text})))
    return ~held if op in ("neq", "not_contains") else held


def _holds(left: float, op: str, right: float) -> bool:
    return {
        "eq": left == right,
        "neq": left != right,
        "gt": left > right,
        "gte": left >= right,
        "lt": left < right,
        "lte": left <= right,
    }[op]


def _trait_describe(test: TraitTest) -> str:
    name = TraitDefinition.objects.filter(key=test.key).values_list("name", flat=True).first() or test.key
    words = compiler.operator_label(test.operator)
    if test.value is None:
        return f"Computed trait “{name}” {words}"
    return f"Computed trait “{name}” {words} {test.value}"


CONDITION_KINDS: dict[str, ConditionKind] = {
    "computed_trait": ConditionKind(
        keys=frozenset({"trait", "operator", "value"}),
        parse=_trait_parse,
        compile=_trait_compile,
        describe=_trait_describe,
        check=_trait_check,
    ),
    "score": SCORE_KIND,
}
