"""Segment definitions: validation (`parse`) and compilation to one parametrised ORM query.

A definition is a group: ``{"op": "and"|"or", "conditions": [...]}``; a condition is a nested
group or a leaf with a ``type``:

- ``page`` / ``screen`` / ``event``: behaviour. ``event`` needs ``name``; all take ``where``
  (property filters: ``path`` and ``name`` are columns, anything else reads the event's
  properties), ``count`` (``{"operator", "value"}``, default ``gte 1``) and an optional window,
  ``within_days: N`` (today and the N-1 days before, UTC) or ``between: {"start_days_ago": A,
  "end_days_ago": B}``. Without a window: ever. Bot events are left out unless
  ``include_bots: true``.
- ``field``: a contact column (or ``company.*``, ``custom.<key>``), ``operator``, ``value``.
- ``trait``: a key of the contact's traits, ``operator``, ``value``.
- ``tag``: ``operator`` ``has`` / ``not_has``, ``value``.
- ``deal``: deals whose primary contact is the contact, ``where`` over deal fields, ``count``.
- ``segment``: ``segment_id``, ``operator`` ``in`` / ``not_in`` (reads that segment's current
  members, not its definition, so nested segments cost one index lookup).
- ``consent``: ``category``, ``operator`` ``granted`` / ``not_granted``: the contact's latest
  consent state (``Contact.consent.categoryPreferences[category]`` is ``true``; a missing
  category or no consent state at all is "not granted").
- the condition kinds of `segments.definition.kinds.CONDITION_KINDS` (data of other apps, such
  as computed traits): each parses, compiles, describes and analyses its own leaves.

The root group may also carry ``"require_consent": "<category>"``: the segment then holds only
people who granted that category, whatever its conditions say (so its webhooks never carry
anyone else).

Windows are day-granular, so the daily rollups and the raw events give the same answer and a
scheduled recompute after midnight is all that window expiry needs. Empty groups are ignored.
Text comparisons (contains, starts_with, ends_with) ignore case, except on page paths and event
names, which are case-sensitive like the URLs they come from; ``eq`` is exact, except on emails and
company domains (lower-cased on both sides: people type "Ada@Example.com").

Choice fields (lifecycle stage, deal status) take their stored codes ("lead", not "Lead"): an
unknown code is refused with the ``allowed`` list instead of silently matching nobody.
`check_values` does the same, when a definition is saved or previewed, for values that live in
the database (custom choice fields, owners, deal stages and pipelines).

Every user value reaches SQL as a query parameter: the ORM builds the statement, and JSON keys go
through ``jsonb_extract_path(_text)`` with the key as a parameter. Values that Postgres would
refuse at run time (NUL characters, numbers out of range, text that is not a date) are refused
here with a 400, or guarded in SQL (numbers are compared only where ``jsonb_typeof`` says number).
"""

import datetime as dt
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.postgres.fields import ArrayField
from django.db.models import (
    BooleanField,
    Case,
    Count,
    DecimalField,
    Exists,
    ExpressionWrapper,
    F,
    Func,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    TextField,
    Value,
    When,
)
from django.db.models.fields.json import JSONField
from django.db.models.functions import Lower
from django.db.models.lookups import Exact, In

from contacts.models import Contact, CustomField, CustomFieldEntity, CustomFieldType, LifecycleStage
from core.errors import DomainError
from identity.models import ContactEvent, DailyActivity
from pipeline.models import Deal, DealStatus, Pipeline, Stage
from segments.models import Membership

MAX_DEPTH = 6
MAX_NODES = 60
MAX_TEXT = 500
MAX_LIST = 200
MAX_COUNT = 1_000_000
MAX_DAYS = 3650
# The stitching worker keeps category names up to this length (identity.services.projection.consent_state).
MAX_CATEGORY = 100
# Larger numbers gain nothing and risk overflow in bigint/numeric parameters.
MAX_NUMBER = 1e15

GROUP_OPS = {"and", "or"}
TEXT_OPS = {"eq", "neq", "contains", "not_contains", "starts_with", "ends_with", "in", "is_set", "is_not_set"}
ORDER_OPS = {"gt", "gte", "lt", "lte"}
RELATIVE_OPS = {"within_last_days", "more_than_days_ago"}
COUNT_OPS = {"eq", "neq", "gt", "gte", "lt", "lte"}
ALL_OPS = TEXT_OPS | ORDER_OPS | RELATIVE_OPS

# ASCII digits only: Python's \d also matches other scripts' digits ("٢٠٢٦-..."), which no stored
# ISO date contains, so such a value would compare as text and silently match nothing.
ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}")
ISO_DATE_GUARD = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"


class DefinitionError(DomainError):
    code = "invalid_definition"

    def __init__(self, path: str, message: str, *, allowed: list | None = None) -> None:
        detail: dict[str, Any] = {"path": path, "message": message}
        if allowed is not None:
            detail["allowed"] = allowed
        super().__init__(f"{path}: {message}", fields={"definition": [detail]})
        self.path = path
        self.allowed = allowed


# Contact columns a `field` condition may read: name -> (ORM path, kind).
CONTACT_FIELDS: dict[str, tuple[str, str]] = {
    "email": ("email", "text"),
    "first_name": ("first_name", "text"),
    "last_name": ("last_name", "text"),
    "phone": ("phone", "text"),
    "title": ("title", "text"),
    "lifecycle_stage": ("lifecycle_stage", "text"),
    "owner": ("owner_id", "id"),
    "company": ("company_id", "id"),
    "company.name": ("company__name", "text"),
    "company.domain": ("company__domain", "text"),
    "company.industry": ("company__industry", "text"),
    "company.size": ("company__size", "text"),
    "is_identified": ("is_identified", "bool"),
    "created_at": ("created_at", "date"),
    "updated_at": ("updated_at", "date"),
    "first_seen": ("first_seen", "date"),
    "last_seen": ("last_seen", "date"),
}
DEAL_FIELDS: dict[str, tuple[str, str]] = {
    "status": ("status", "text"),
    "title": ("title", "text"),
    "currency": ("currency", "text"),
    "lost_reason": ("lost_reason", "text"),
    "amount": ("amount", "number"),
    "pipeline": ("pipeline_id", "id"),
    "stage": ("stage_id", "id"),
    "owner": ("owner_id", "id"),
    "expected_close_date": ("expected_close_date", "day"),
    "created_at": ("created_at", "date"),
    "closed_at": ("closed_at", "date"),
}
# Fields whose values are a fixed set of codes, with the labels people see: name -> {code: label}.
CONTACT_CHOICES: dict[str, dict[str, str]] = {"lifecycle_stage": dict(LifecycleStage.choices)}
DEAL_CHOICES: dict[str, dict[str, str]] = {"status": dict(DealStatus.choices)}
# Operators that compare a choice (or an id) with its value; the others need no allowed list.
CHOICE_OPS = {"eq", "neq", "in"}
# Stored lower-cased (core.normalize), typed by people in any case: compared lower-cased.
CASELESS_COLUMNS = {"email", "company__domain"}
CASELESS_TRAITS = {"email"}
KIND_OPS = {
    "text": TEXT_OPS | ORDER_OPS,
    "id": {"eq", "neq", "in", "is_set", "is_not_set"},
    "bool": {"eq", "neq", "is_set", "is_not_set"},
    "number": {"eq", "neq", "in", "is_set", "is_not_set"} | ORDER_OPS,
    "date": {"eq", "is_set", "is_not_set"} | ORDER_OPS | RELATIVE_OPS,
    "day": {"eq", "is_set", "is_not_set"} | ORDER_OPS | RELATIVE_OPS,
    "json": ALL_OPS,
}
# Behaviour columns on ContactEvent (anything else is a property of the event).
EVENT_COLUMNS = {"path", "name"}


# ---------------------------------------------------------------------------------------------
# The parsed tree


@dataclass(frozen=True)
class Filter:
    path: str  # where it came from in the definition, for "why" and errors
    target: str  # a column name, or a JSON key
    kind: str  # text / id / bool / number / date / day / json
    operator: str
    value: Any


@dataclass(frozen=True)
class Window:
    start_days_ago: int | None  # None: ever
    end_days_ago: int = 0


@dataclass(frozen=True)
class CountTest:
    operator: str = "gte"
    value: int = 1


@dataclass(frozen=True)
class Behaviour:
    path: str
    type: str  # page / screen / event
    name: str
    filters: tuple[Filter, ...]
    count: CountTest
    window: Window
    include_bots: bool


@dataclass(frozen=True)
class FieldCondition:
    path: str
    type: str  # field / trait
    filter: Filter


@dataclass(frozen=True)
class TagCondition:
    path: str
    operator: str
    value: str


@dataclass(frozen=True)
class DealCondition:
    path: str
    filters: tuple[Filter, ...]
    count: CountTest


@dataclass(frozen=True)
class SegmentCondition:
    path: str
    segment_id: int
    negate: bool


@dataclass(frozen=True)
class ConsentCondition:
    path: str
    category: str
    granted: bool


@dataclass(frozen=True)
class Group:
    path: str
    op: str
    children: tuple[Any, ...] = field(default_factory=tuple)
    # Root only: members must have granted this consent category.
    require_consent: str | None = None


@dataclass(frozen=True)
class KindCondition:
    """A leaf of a kind in segments.definition.kinds.CONDITION_KINDS; `data` is what its parse made."""

    path: str
    type: str
    data: Any


@dataclass(frozen=True)
class ConditionKind:
    """A segment condition kind another app's data adds (registered in kinds.CONDITION_KINDS).

    - `keys`: the keys a leaf of this kind may hold besides "type".
    - `parse(obj, path) -> data`: validate the leaf (no database reads: it runs on every
      evaluation); raise DefinitionError naming the bad part.
    - `compile(data, ctx) -> Q`: over Contact, values as parameters (ctx.scope narrows it).
    - `describe(data) -> str`: the plain-language sentence.
    - `triggers(data)`, `has_window(data)`: what `analyse` reports for it.
    - `check(data)`: database checks when a definition is saved or previewed (`check_values`).
    """

    keys: frozenset[str]
    parse: Any
    compile: Any
    describe: Any
    triggers: Any = lambda data: {"profile"}
    has_window: Any = lambda data: False
    check: Any = lambda data: None


def condition_kinds() -> dict[str, ConditionKind]:
    # kinds.py builds on this module's helpers (DefinitionError, Filter parsing), so it is
    # imported when first needed rather than at the top.
    from segments.definition.kinds import CONDITION_KINDS

    return CONDITION_KINDS


Leaf = (
    Behaviour
    | FieldCondition
    | TagCondition
    | DealCondition
    | SegmentCondition
    | ConsentCondition
    | KindCondition
)
Node = Group | Leaf


# ---------------------------------------------------------------------------------------------
# Validation


class _Parser:
    def __init__(self) -> None:
        self.nodes = 0

    def group(self, raw: Any, path: str, depth: int) -> Group:
        self._count(path)
        if depth > MAX_DEPTH:
            raise DefinitionError(path, f"groups nest at most {MAX_DEPTH} deep.")
        obj = _object(raw, path)
        _only_keys(obj, path, {"op", "conditions", "require_consent"} if depth == 1 else {"op", "conditions"})
        require_consent = None
        if obj.get("require_consent") not in (None, ""):
            require_consent = _category(obj["require_consent"], f"{path}.require_consent")
        op = obj.get("op")
        if op not in GROUP_OPS:
            raise DefinitionError(f"{path}.op", 'expected "and" or "or".')
        conditions = obj.get("conditions", [])
        if not isinstance(conditions, list):
            raise DefinitionError(f"{path}.conditions", "expected a list.")
        children = []
        for i, child in enumerate(conditions):
            child_path = f"{path}.conditions[{i}]"
            if isinstance(child, dict) and "op" in child and "type" not in child:
                node = self.group(child, child_path, depth + 1)
                if node.children:  # empty groups are ignored
                    children.append(node)
            else:
                children.append(self.leaf(child, child_path))
        return Group(path=path, op=op, children=tuple(children), require_consent=require_consent)

    def _count(self, path: str) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise DefinitionError(path, f"a definition holds at most {MAX_NODES} conditions and groups.")

    def leaf(self, raw: Any, path: str) -> Leaf:
        self._count(path)
        obj = _object(raw, path)
        kind = obj.get("type")
        if kind in ("page", "screen", "event"):
            return self.behaviour(obj, path, kind)
        if kind == "field":
            _only_keys(obj, path, {"type", "field", "operator", "value"})
            name = _text(obj.get("field"), f"{path}.field")
            if name.startswith("custom."):
                target, fkind = name.removeprefix("custom."), "json"
                _key(target, f"{path}.field")
            elif name in CONTACT_FIELDS:
                target, fkind = CONTACT_FIELDS[name]
            else:
                raise DefinitionError(f"{path}.field", f"unknown field {name!r}.")
            filt = _filter(obj, path, target=name if fkind == "json" else target, kind=fkind)
            if name in CONTACT_CHOICES:
                _check_choice(filt, CONTACT_CHOICES[name], what=name.replace("_", " "))
            return FieldCondition(path=path, type="field", filter=filt)
        if kind == "trait":
            _only_keys(obj, path, {"type", "trait", "operator", "value"})
            key = _key(obj.get("trait"), f"{path}.trait")
            return FieldCondition(path=path, type="trait", filter=_filter(obj, path, target=key, kind="json"))
        if kind == "tag":
            _only_keys(obj, path, {"type", "operator", "value"})
            op = obj.get("operator", "has")
            if op not in ("has", "not_has"):
                raise DefinitionError(f"{path}.operator", 'expected "has" or "not_has".')
            value = _text(obj.get("value"), f"{path}.value").strip().lower()
            return TagCondition(path=path, operator=op, value=value)
        if kind == "deal":
            _only_keys(obj, path, {"type", "where", "count"})
            filters = self.where(obj.get("where", []), f"{path}.where", columns=DEAL_FIELDS, key_name="field")
            return DealCondition(
                path=path, filters=filters, count=_count_test(obj.get("count"), f"{path}.count")
            )
        if kind == "segment":
            _only_keys(obj, path, {"type", "segment_id", "operator"})
            segment_id = obj.get("segment_id")
            if type(segment_id) is not int or not 0 < segment_id < 2**63:
                raise DefinitionError(f"{path}.segment_id", "expected a segment id.")
            op = obj.get("operator", "in")
            if op not in ("in", "not_in"):
                raise DefinitionError(f"{path}.operator", 'expected "in" or "not_in".')
            return SegmentCondition(path=path, segment_id=segment_id, negate=op == "not_in")
        if kind == "consent":
            _only_keys(obj, path, {"type", "category", "operator"})
            category = _category(obj.get("category"), f"{path}.category")
            op = obj.get("operator", "granted")
            if op not in ("granted", "not_granted"):
                raise DefinitionError(f"{path}.operator", 'expected "granted" or "not_granted".')
            return ConsentCondition(path=path, category=category, granted=op == "granted")
        if isinstance(kind, str) and kind in condition_kinds():
            spec = condition_kinds()[kind]
            _only_keys(obj, path, {"type"} | spec.keys)
            return KindCondition(path=path, type=kind, data=spec.parse(obj, path))
        expected = ", ".join(
            ["page", "screen", "event", "field", "trait", "tag", "deal", "segment", "consent"]
        )
        raise DefinitionError(f"{path}.type", f"expected one of {', '.join([expected, *condition_kinds()])}.")

    def behaviour(self, obj: dict, path: str, kind: str) -> Behaviour:
        _only_keys(obj, path, {"type", "name", "where", "count", "within_days", "between", "include_bots"})
        name = ""
        if kind == "event" or "name" in obj:
            name = _text(obj.get("name"), f"{path}.name")
            if not name:
                raise DefinitionError(f"{path}.name", "an event condition needs the event name.")
        filters = self.where(obj.get("where", []), f"{path}.where", columns=None, key_name="property")
        if "within_days" in obj and "between" in obj:
            raise DefinitionError(path, "give within_days or between, not both.")
        window = Window(start_days_ago=None)
        if "within_days" in obj:
            days = _int(obj["within_days"], f"{path}.within_days", low=1, high=MAX_DAYS)
            window = Window(start_days_ago=days - 1, end_days_ago=0)
        elif "between" in obj:
            between = _object(obj["between"], f"{path}.between")
            _only_keys(between, f"{path}.between", {"start_days_ago", "end_days_ago"})
            start = _int(
                between.get("start_days_ago"), f"{path}.between.start_days_ago", low=0, high=MAX_DAYS
            )
            end = _int(between.get("end_days_ago"), f"{path}.between.end_days_ago", low=0, high=MAX_DAYS)
            if end > start:
                raise DefinitionError(f"{path}.between", "start_days_ago must be at least end_days_ago.")
            window = Window(start_days_ago=start, end_days_ago=end)
        include_bots = obj.get("include_bots", False)
        if not isinstance(include_bots, bool):
            raise DefinitionError(f"{path}.include_bots", "expected true or false.")
        return Behaviour(
            path=path,
            type=kind,
            name=name,
            filters=filters,
            count=_count_test(obj.get("count"), f"{path}.count"),
            window=window,
            include_bots=include_bots,
        )

    def where(self, raw: Any, path: str, *, columns: dict | None, key_name: str) -> tuple[Filter, ...]:
        if not isinstance(raw, list):
            raise DefinitionError(path, "expected a list of filters.")
        if len(raw) > 20:
            raise DefinitionError(path, "at most 20 filters.")
        filters = []
        for i, item in enumerate(raw):
            item_path = f"{path}[{i}]"
            self._count(item_path)
            obj = _object(item, item_path)
            _only_keys(obj, item_path, {key_name, "operator", "value"})
            name = _key(obj.get(key_name), f"{item_path}.{key_name}")
            if columns is not None:
                if name not in columns:
                    raise DefinitionError(f"{item_path}.{key_name}", f"unknown field {name!r}.")
                target, kind = columns[name]
            elif name in EVENT_COLUMNS:
                target, kind = name, "text"
            else:
                target, kind = name, "json"
            filt = _filter(obj, item_path, target=target, kind=kind)
            if columns is DEAL_FIELDS and name in DEAL_CHOICES:
                _check_choice(filt, DEAL_CHOICES[name], what=f"deal {name}")
            filters.append(filt)
        return tuple(filters)


def _values(f: Filter) -> list[tuple[str, Any]]:
    """(path, value) of each value an eq/neq/in filter compares with."""
    if f.operator == "in":
        return [(f"{f.path}.value[{i}]", v) for i, v in enumerate(f.value)]
    return [(f"{f.path}.value", f.value)] if f.operator in CHOICE_OPS else []


def _check_choice(f: Filter, choices: dict[str, str], *, what: str) -> None:
    for path, value in _values(f):
        if value not in choices:
            problem = f"choose a {what}" if value == "" else f"{value!r} is not a {what}"
            raise DefinitionError(
                path, f"{problem}; expected one of {', '.join(choices)}.", allowed=list(choices)
            )


def _object(raw: Any, path: str) -> dict:
    if not isinstance(raw, dict):
        raise DefinitionError(path, "expected an object.")
    return raw


def _only_keys(obj: dict, path: str, allowed: set[str]) -> None:
    unknown = set(obj) - allowed
    if unknown:
        raise DefinitionError(path, f"unknown key {sorted(map(str, unknown))[0]!r}.")


def _text(raw: Any, path: str) -> str:
    if not isinstance(raw, str):
        raise DefinitionError(path, "expected a string.")
    if len(raw) > MAX_TEXT:
        raise DefinitionError(path, f"at most {MAX_TEXT} characters.")
    if "\x00" in raw:  # Postgres text cannot hold NUL
        raise DefinitionError(path, "contains a NUL character.")
    return raw


def _key(raw: Any, path: str) -> str:
    key = _text(raw, path)
    if not key or len(key) > 100:
        raise DefinitionError(path, "expected a name of 1 to 100 characters.")
    return key


def _category(raw: Any, path: str) -> str:
    """A consent category as sites name them ("marketing", "Advertising", "C0004"): matched
    exactly, like the keys of context.consent.categoryPreferences."""
    value = _text(raw, path).strip()
    if not value or len(value) > MAX_CATEGORY:
        raise DefinitionError(path, f"expected a consent category name of 1 to {MAX_CATEGORY} characters.")
    return value


def _int(raw: Any, path: str, *, low: int, high: int) -> int:
    if type(raw) is not int or not low <= raw <= high:
        raise DefinitionError(path, f"expected a whole number from {low} to {high}.")
    return raw


def _number(raw: Any, path: str) -> float | int:
    if type(raw) not in (int, float) or (isinstance(raw, float) and not math.isfinite(raw)):
        raise DefinitionError(path, "expected a number.")
    if abs(raw) > MAX_NUMBER:
        raise DefinitionError(path, "number out of range.")
    return raw


def _scalar(raw: Any, path: str) -> str | int | float | bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int | float):
        return _number(raw, path)
    return _text(raw, path)


def _count_test(raw: Any, path: str) -> CountTest:
    if raw is None:
        return CountTest()
    obj = _object(raw, path)
    _only_keys(obj, path, {"operator", "value"})
    op = obj.get("operator")
    if op not in COUNT_OPS:
        raise DefinitionError(f"{path}.operator", f"expected one of {', '.join(sorted(COUNT_OPS))}.")
    return CountTest(operator=op, value=_int(obj.get("value"), f"{path}.value", low=0, high=MAX_COUNT))


def _filter(obj: dict, path: str, *, target: str, kind: str) -> Filter:
    op = obj.get("operator")
    if op not in ALL_OPS:
        raise DefinitionError(f"{path}.operator", "unknown operator.")
    if op not in KIND_OPS[kind]:
        raise DefinitionError(f"{path}.operator", f"{op} does not apply to this field.")
    vpath = f"{path}.value"
    raw = obj.get("value")
    value: Any = None
    if op in ("is_set", "is_not_set"):
        value = None
    elif op in RELATIVE_OPS:
        value = _int(raw, vpath, low=0, high=MAX_DAYS)
    elif op == "in":
        if not isinstance(raw, list) or not 0 < len(raw) <= MAX_LIST:
            raise DefinitionError(vpath, f"expected a list of 1 to {MAX_LIST} values.")
        value = tuple(_typed(item, f"{vpath}[{i}]", kind) for i, item in enumerate(raw))
    elif op in ("contains", "not_contains", "starts_with", "ends_with"):
        value = _text(raw, vpath)
    elif op in ORDER_OPS and kind == "json":
        value = _scalar(raw, vpath)
        if isinstance(value, bool):
            raise DefinitionError(vpath, "expected a number or a date.")
        if isinstance(value, str) and not ISO_DATE.match(value):
            raise DefinitionError(vpath, "expected a number or a date (YYYY-MM-DD).")
    else:
        value = _typed(raw, vpath, kind)
    return Filter(path=path, target=target, kind=kind, operator=op, value=value)


def _typed(raw: Any, path: str, kind: str) -> Any:
    if kind == "text":
        return _text(raw, path)
    if kind == "id":
        if type(raw) is not int or not 0 < raw < 2**63:
            raise DefinitionError(path, "expected an id.")
        return raw
    if kind == "bool":
        if not isinstance(raw, bool):
            raise DefinitionError(path, "expected true or false.")
        return raw
    if kind == "number":
        return _number(raw, path)
    if kind in ("date", "day"):
        text = _text(raw, path)
        try:
            return dt.date.fromisoformat(text[:10]) if len(text) >= 10 else dt.date.fromisoformat(text)
        except ValueError:
            raise DefinitionError(path, "expected a date (YYYY-MM-DD).") from None
    return _scalar(raw, path)  # json


def parse(definition: Any) -> Group:
    """Validate a definition; raise DefinitionError naming the first bad node."""
    if definition in (None, {}):
        return Group(path="definition", op="and")
    return _Parser().group(definition, "definition", 1)


def _references(tree: Group) -> tuple[dict[str, list[tuple[str, Any]]], dict[str, list[tuple[str, Any]]]]:
    """(path, value) of the ids (owner, stage, pipeline) and custom field values a tree compares."""
    wanted: dict[str, list[tuple[str, Any]]] = {"owner": [], "stage": [], "pipeline": []}
    custom: dict[str, list[tuple[str, Any]]] = {}
    for leaf in leaves(tree):
        if isinstance(leaf, FieldCondition) and leaf.type == "field":
            f = leaf.filter
            if f.kind == "json":
                custom.setdefault(f.target.removeprefix("custom."), []).extend(_values(f))
            elif f.target == "owner_id":
                wanted["owner"].extend(_values(f))
        elif isinstance(leaf, DealCondition):
            for f in leaf.filters:
                name = f.target.removesuffix("_id")
                if f.kind == "id" and name in wanted:
                    wanted[name].extend(_values(f))
    return wanted, custom


def referenced_ids(tree: Group) -> dict[str, set[int]]:
    """{"owner" | "stage" | "pipeline": ids} the tree names, for labelling them."""
    wanted, _ = _references(tree)
    return {name: {v for _, v in items} for name, items in wanted.items() if items}


def check_values(tree: Group) -> None:
    """Refuse values that name nothing in the database: an option a custom choice field does not
    have, an owner, deal stage or pipeline id that does not exist (DefinitionError with the
    `allowed` values). Run when a definition is saved or previewed, not on every recompute: a
    user or stage deleted later makes its condition match nobody instead of stopping the segment."""
    for leaf in leaves(tree):
        if isinstance(leaf, KindCondition):
            condition_kinds()[leaf.type].check(leaf.data)
    wanted, custom = _references(tree)
    if custom:
        choice_fields = CustomField.objects.filter(
            entity=CustomFieldEntity.CONTACT, field_type=CustomFieldType.CHOICE, key__in=list(custom)
        ).values_list("key", "choices")
        for key, choices in choice_fields:  # other custom fields take any value
            for path, value in custom[key]:
                if _json_text(value) not in choices:
                    raise DefinitionError(
                        path,
                        f"{value!r} is not an option of custom field {key!r}; "
                        f"expected one of {', '.join(choices)}.",
                        allowed=list(choices),
                    )
    models = {"owner": get_user_model(), "stage": Stage, "pipeline": Pipeline}
    for name, items in wanted.items():
        if not items:
            continue
        rows = models[name].objects.all()
        existing = set(rows.filter(pk__in={v for _, v in items}).values_list("pk", flat=True))
        for path, value in items:
            if value not in existing:
                if name == "owner":
                    rows = rows.filter(is_active=True)
                allowed = list(rows.order_by("pk").values_list("pk", flat=True)[:MAX_LIST])
                raise DefinitionError(path, f"there is no {name} with id {value}.", allowed=allowed)


# ---------------------------------------------------------------------------------------------
# Analysis


def leaves(node: Node) -> list[Leaf]:
    if isinstance(node, Group):
        return [leaf for child in node.children for leaf in leaves(child)]
    return [node]


def analyse(tree: Group) -> dict[str, Any]:
    """What can change membership: `triggers` for the realtime path, nested segments, windows."""
    triggers: set[str] = set()
    depends_on: set[int] = set()
    has_window = False
    for leaf in leaves(tree):
        if isinstance(leaf, Behaviour):
            triggers.add(f"event:{leaf.name}" if leaf.type == "event" else leaf.type)
            has_window |= leaf.window.start_days_ago is not None
        elif isinstance(leaf, FieldCondition):
            triggers.add("profile")
            has_window |= leaf.filter.operator in RELATIVE_OPS
        elif isinstance(leaf, SegmentCondition):
            depends_on.add(leaf.segment_id)
            triggers.add(f"segment:{leaf.segment_id}")
        elif isinstance(leaf, TagCondition):
            triggers.add("profile")  # tags change in the CRM (contacts.services.changes)
        elif isinstance(leaf, DealCondition):
            triggers.add("deal")  # deals change in the CRM (contacts.services.changes)
            has_window |= any(f.operator in RELATIVE_OPS for f in leaf.filters)
        elif isinstance(leaf, ConsentCondition):
            triggers.add("profile")  # the stitching worker writes consent as it writes traits
        elif isinstance(leaf, KindCondition):
            spec = condition_kinds()[leaf.type]
            triggers |= set(spec.triggers(leaf.data))
            has_window |= bool(spec.has_window(leaf.data))
    if tree.require_consent:
        triggers.add("profile")
    return {"triggers": sorted(triggers), "depends_on": sorted(depends_on), "has_window": has_window}


# ---------------------------------------------------------------------------------------------
# Compilation


class JsonPath(Func):
    """`jsonb_extract_path(column, key)`: the key is a parameter (never SQL text, never an index)."""

    function = "jsonb_extract_path"
    output_field = JSONField()


class JsonPathText(Func):
    function = "jsonb_extract_path_text"
    output_field = TextField()


class JsonTypeof(Func):
    function = "jsonb_typeof"
    output_field = TextField()


class JsonNumeric(Func):
    template = "(%(expressions)s)::numeric"
    output_field = DecimalField()


@dataclass
class Context:
    today: dt.date
    # Restrict every subquery to these contacts (incremental evaluation); None: everyone.
    scope: list[int] | None = None

    def day_start(self, days_ago: int) -> dt.datetime:
        day = self.today - dt.timedelta(days=days_ago)
        return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


def compile_q(node: Node, ctx: Context) -> Q:
    if isinstance(node, Group):
        if not node.children:
            return Q()
        parts = [compile_q(child, ctx) for child in node.children]
        result = parts[0]
        for part in parts[1:]:
            result = (result & part) if node.op == "and" else (result | part)
        return result
    if isinstance(node, Behaviour):
        return _behaviour_q(node, ctx)
    if isinstance(node, FieldCondition):
        if node.type == "trait":
            # an identify's email trait is as people typed it: compared like the email column
            caseless = node.filter.target in CASELESS_TRAITS
            return _json_q(node.filter, "traits", node.filter.target, ctx, caseless=caseless)
        if node.filter.kind == "json":
            return _json_q(node.filter, "custom_fields", node.filter.target.removeprefix("custom."), ctx)
        return _column_q(node.filter, node.filter.target, ctx)
    if isinstance(node, TagCondition):
        q = Q(tags__contains=[node.value])
        return ~q if node.operator == "not_has" else q
    if isinstance(node, DealCondition):
        deals = Deal.objects.all()
        for f in node.filters:
            deals = deals.filter(_column_q(f, f.target, ctx))
        return _count_q(deals, node.count, ctx, total=None)
    if isinstance(node, SegmentCondition):
        members = Membership.objects.filter(
            segment_id=node.segment_id, contact_id=OuterRef("pk"), exited_at__isnull=True
        )
        q = Q(Exists(members))
        return ~q if node.negate else q
    if isinstance(node, ConsentCondition):
        q = consent_granted_q(node.category)
        return q if node.granted else ~q
    if isinstance(node, KindCondition):
        return condition_kinds()[node.type].compile(node.data, ctx)
    raise TypeError(node)


def consent_granted_q(category: str) -> Q:
    """`consent -> 'categoryPreferences' ->> category = 'true'`, NULL (no state, no such
    category) counting as not granted. The worker stores only JSON booleans there."""
    preference = JsonPathText(F("consent"), Value("categoryPreferences"), Value(category))
    return _truthy(_eq(preference, "true"))


def matching_contacts(tree: Group, ctx: Context) -> QuerySet[Contact]:
    """Live contacts the definition matches (restricted to `ctx.scope` when set)."""
    contacts = Contact.objects.filter(merged_into__isnull=True).order_by()
    if ctx.scope is not None:
        contacts = contacts.filter(pk__in=ctx.scope)
    if tree.require_consent:
        contacts = contacts.filter(consent_granted_q(tree.require_consent))
    return contacts.filter(compile_q(tree, ctx))


def leaf_flags(tree: Group, ctx: Context, *, contact_id: int) -> dict[str, bool]:
    """For one contact: which leaves hold, keyed by the leaf's path (the "why" panel)."""
    items = leaves(tree)
    if not items:
        return {}
    annotations = {
        f"c{i}": ExpressionWrapper(compile_q(leaf, ctx), output_field=BooleanField())
        for i, leaf in enumerate(items)
    }
    row = Contact.objects.filter(pk=contact_id).annotate(**annotations).values(*annotations).first()
    if row is None:
        return {}
    return {leaf.path: bool(row[f"c{i}"]) for i, leaf in enumerate(items)}


def _uses_rollup(node: Behaviour) -> bool:
    """DailyActivity answers conditions on the event name or the page path alone (it holds no
    properties and counts no bots); anything else reads the events."""
    if node.include_bots:
        return False
    if node.type == "event":
        return not node.filters
    return not node.name and all(f.target == "path" for f in node.filters)


def _behaviour_q(node: Behaviour, ctx: Context) -> Q:
    window = node.window
    if _uses_rollup(node):
        rows = DailyActivity.objects.filter(kind=node.type)
        if node.type == "event":
            rows = rows.filter(key=node.name)
        for f in node.filters:
            rows = rows.filter(_column_q(f, "key", ctx, case_sensitive=True))
        if window.start_days_ago is not None:
            rows = rows.filter(
                day__gte=ctx.today - dt.timedelta(days=window.start_days_ago),
                day__lte=ctx.today - dt.timedelta(days=window.end_days_ago),
            )
        return _count_q(rows, node.count, ctx, total="count")
    rows = ContactEvent.objects.filter(type="track" if node.type == "event" else node.type)
    if not node.include_bots:
        rows = rows.filter(is_bot=False)
    if node.name:
        rows = rows.filter(name=node.name)
    for f in node.filters:
        if f.target in EVENT_COLUMNS:
            rows = rows.filter(_column_q(f, f.target, ctx, case_sensitive=True))
        else:
            rows = rows.filter(_json_q(f, "event__properties", f.target, ctx))
    if window.start_days_ago is not None:
        rows = rows.filter(
            timestamp__gte=ctx.day_start(window.start_days_ago),
            timestamp__lt=ctx.day_start(window.end_days_ago - 1),
        )
    return _count_q(rows, node.count, ctx, total=None)


def _count_q(rows: QuerySet, test: CountTest, ctx: Context, *, total: str | None) -> Q:
    """`count(rows per contact) <op> n`, where contacts without rows count 0.

    "At least once" and "never" are (NOT) EXISTS, which Postgres runs as semi/anti joins; other
    counts group the rows by contact once (`contact_id IN (… GROUP BY … HAVING …)`)."""
    if ctx.scope is not None:
        rows = rows.filter(contact_id__in=ctx.scope)
    op, n = test.operator, test.value
    if op == "gt":
        op, n = "gte", n + 1
    elif op == "lte":
        op, n = "lt", n + 1
    if op == "gte" and n <= 0:
        return Q()
    if op == "lt" and n <= 0:
        return Q(pk__in=[])
    exists = Q(Exists(rows.filter(contact_id=OuterRef("pk"))))
    if (op == "gte" and n == 1) or (op == "neq" and n == 0):
        return exists
    if (op == "lt" and n == 1) or (op == "eq" and n == 0):
        return ~exists
    aggregate = Sum(total) if total else Count("*")
    grouped = rows.order_by().values("contact_id").annotate(seg_total=aggregate)
    if op == "gte":
        return Q(pk__in=grouped.filter(seg_total__gte=n).values("contact_id"))
    if op == "lt":
        return ~Q(pk__in=grouped.filter(seg_total__gte=n).values("contact_id"))
    if op == "eq":
        return Q(pk__in=grouped.filter(seg_total=n).values("contact_id"))
    return ~Q(pk__in=grouped.filter(seg_total=n).values("contact_id"))  # neq n >= 1


def _column_q(f: Filter, column: str, ctx: Context, *, case_sensitive: bool = False) -> Q:
    """A filter on a column. Text operators ignore case, except on page paths and event or page
    names (`case_sensitive`): URLs are case-sensitive, and an exact-case prefix can use the
    rollups' pattern index (`LIKE '/pricing%'`)."""
    op, v = f.operator, f.value
    if op == "is_set":
        q = Q(**{f"{column}__isnull": False})
        return q & ~Q(**{column: ""}) if f.kind == "text" else q
    if op == "is_not_set":
        return ~_column_q(Filter(f.path, f.target, f.kind, "is_set", None), column, ctx)
    if f.kind in ("date", "day"):
        return _date_q(f, column, ctx)
    lookup = {
        "eq": "exact",
        "neq": "exact",
        "contains": "icontains",
        "not_contains": "icontains",
        "starts_with": "istartswith",
        "ends_with": "iendswith",
        "in": "in",
        "gt": "gt",
        "gte": "gte",
        "lt": "lt",
        "lte": "lte",
    }[op]
    if case_sensitive and lookup.startswith("i") and lookup != "in":
        lookup = lookup[1:]
    if column in CASELESS_COLUMNS and op in CHOICE_OPS:
        # lower(column) (what the live-email unique index is built on) = the lower-cased value
        lowered = Lower(column)
        q = Q(In(lowered, [x.lower() for x in v])) if op == "in" else Q(Exact(lowered, v.lower()))
        # "is not" keeps the people with no value, as the exact comparison's negation does
        return ~q | Q(**{f"{column}__isnull": True}) if op == "neq" else q
    q = Q(**{f"{column}__{lookup}": list(v) if op == "in" else v})
    return ~q if op in ("neq", "not_contains") else q


def _date_q(f: Filter, column: str, ctx: Context) -> Q:
    op, v = f.operator, f.value
    is_day = f.kind == "day"

    def start(day: dt.date):
        return day if is_day else dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)

    if op == "within_last_days":  # today and the v-1 days before; 0: today only
        return Q(**{f"{column}__gte": start(ctx.today - dt.timedelta(days=max(v - 1, 0)))})
    if op == "more_than_days_ago":
        return Q(**{f"{column}__lt": start(ctx.today - dt.timedelta(days=max(v - 1, 0)))})
    day_after = v + dt.timedelta(days=1)
    if op == "eq":
        return Q(**{f"{column}__gte": start(v), f"{column}__lt": start(day_after)})
    if op == "gt":
        return Q(**{f"{column}__gte": start(day_after)})
    if op == "gte":
        return Q(**{f"{column}__gte": start(v)})
    if op == "lt":
        return Q(**{f"{column}__lt": start(v)})
    return Q(**{f"{column}__lt": start(day_after)})  # lte


def _json_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _json_q(f: Filter, column: str, key: str, ctx: Context, *, caseless: bool = False) -> Q:
    """A filter on `column ->> key`, never erroring whatever the stored JSON holds; `caseless`
    compares eq/neq/in lower-cased on both sides."""
    op, v = f.operator, f.value
    text = JsonPathText(F(column), Value(key))
    if caseless and op in CHOICE_OPS:
        text = Lower(text)
        v = tuple(_json_text(x).lower() for x in v) if op == "in" else _json_text(v).lower()
    if op in ("is_set", "is_not_set"):
        q = Q(_BoolExpr(text, template="(COALESCE(%(expressions)s, '') <> '')"))
        return q if op == "is_set" else ~q
    if op in ("eq", "neq"):
        q = _truthy(_eq(text, _json_text(v)))
        return ~q if op == "neq" else q
    if op == "in":
        values = Value([_json_text(x) for x in v], output_field=ArrayField(TextField()))
        return _truthy(_Binary(text, "= ANY", Func(values, template="(%(expressions)s)")))
    if op in ("contains", "not_contains", "starts_with", "ends_with"):
        pattern = {"contains": "%{}%", "not_contains": "%{}%", "starts_with": "{}%", "ends_with": "%{}"}[op]
        q = _truthy(_ilike(text, pattern.format(_like_escape(v))))
        return ~q if op == "not_contains" else q
    if op in RELATIVE_OPS:
        boundary = (ctx.today - dt.timedelta(days=max(v - 1, 0))).isoformat()
        compare = ">=" if op == "within_last_days" else "<"
        return _text_compare(text, compare, boundary, guard=True)
    # gt/gte/lt/lte: numbers compare as numbers (only where the stored value is a JSON number),
    # dates (YYYY-MM-DD...) as text, which orders ISO dates correctly.
    compare = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
    if isinstance(v, str):
        return _text_compare(text, compare, v, guard=True)
    kind = JsonTypeof(JsonPath(F(column), Value(key)))
    number = Case(When(Q(_eq(kind, "number")), then=JsonNumeric(text)), default=None)
    return _numeric_compare(number, compare, v)


# Small boolean SQL builders over expressions, each with its values as parameters.


class _BoolExpr(Func):
    output_field = BooleanField()


class _Binary(Func):
    output_field = BooleanField()
    arg_joiner = " {} "

    def __init__(self, left, operator: str, right, **extra) -> None:
        super().__init__(left, right, **extra)
        self.arg_joiner = f" {operator} "
        self.template = "(%(expressions)s)"


def _eq(expr, value: str) -> _Binary:
    return _Binary(expr, "=", Value(value))


def _ilike(expr, pattern: str) -> _Binary:
    return _Binary(expr, "ILIKE", Value(pattern))


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _text_compare(expr, compare: str, value: str, *, guard: bool) -> Q:
    q = Q(_Binary(expr, compare, Value(value)))
    if guard:
        q &= Q(_Binary(expr, "~", Value(ISO_DATE_GUARD)))
    return q


def _numeric_compare(expr, compare: str, value: float | int) -> Q:
    return Q(_Binary(expr, compare, Func(Value(str(value)), template="(%(expressions)s)::numeric")))


def _truthy(expr) -> Q:
    """A boolean expression as a Q, with NULL counting as false (so ~ includes missing keys)."""
    return Q(_BoolExpr(expr, template="COALESCE(%(expressions)s, false)"))


# ---------------------------------------------------------------------------------------------
# Plain-language labels (the "why" panel, the segment page)

# The one wording of every operator code: the builder's selects and the sentences below both read
# it, so people see "at least" or "more than N days ago", never "gte" or "more_than_days_ago".
# Dates read as before/after and counts as exactly/fewer than (`operator_label`'s kinds).
OPERATOR_LABELS = {
    "eq": "is",
    "neq": "is not",
    "in": "is one of",
    "contains": "contains",
    "not_contains": "does not contain",
    "starts_with": "starts with",
    "ends_with": "ends with",
    "gt": "more than",
    "gte": "at least",
    "lt": "less than",
    "lte": "at most",
    "within_last_days": "within the last N days",
    "more_than_days_ago": "more than N days ago",
    "is_set": "is set",
    "is_not_set": "is not set",
    "has": "has",
    "not_has": "does not have",
    "not_in": "not in",
    "granted": "granted",
    "not_granted": "not granted",
}
_KIND_LABELS = {
    "date": {
        "eq": "is on",
        "gt": "is after",
        "gte": "is on or after",
        "lt": "is before",
        "lte": "is on or before",
    },
    "count": {"eq": "exactly", "neq": "not exactly", "lt": "fewer than"},
}
_KIND_LABELS["day"] = _KIND_LABELS["date"]
# The order operators are offered in.
OPERATOR_ORDER = [
    "eq",
    "neq",
    "in",
    "contains",
    "not_contains",
    "starts_with",
    "ends_with",
    "gt",
    "gte",
    "lt",
    "lte",
    "within_last_days",
    "more_than_days_ago",
    "is_set",
    "is_not_set",
]


def operator_label(operator: str, *, kind: str = "") -> str:
    """Words for an operator code (`kind`: a field kind, or "count" for count tests)."""
    return _KIND_LABELS.get(kind, {}).get(operator) or OPERATOR_LABELS.get(operator, operator)


def operator_choices(operators: set[str] | list[str], *, kind: str = "") -> list[tuple[str, str]]:
    """(code, words) for a select, in the usual order."""
    ordered = [op for op in OPERATOR_ORDER if op in operators] + sorted(set(operators) - set(OPERATOR_ORDER))
    return [(op, operator_label(op, kind=kind)) for op in ordered]


def _value_words(f: Filter, choices: dict[str, str] | None) -> str:
    values = f.value if f.operator == "in" else (f.value,)
    return ", ".join(str((choices or {}).get(v, v)) for v in values)


def _filter_words(f: Filter, label: str, *, choices: dict[str, str] | None = None) -> str:
    op = operator_label(f.operator, kind=f.kind)
    if f.operator in ("is_set", "is_not_set"):
        return f"{label} {op}"
    if f.operator in RELATIVE_OPS:
        return f"{label} {op.replace('N', str(f.value))}"
    return f"{label} {op} {_value_words(f, choices)}"


def describe(
    node: Node,
    *,
    segment_names: dict[int, str] | None = None,
    value_labels: dict[str, dict[Any, str]] | None = None,
) -> str:
    """The node as a sentence; `value_labels` ({"owner" | "stage" | "pipeline": {id: label}})
    names the ids a condition compares with."""
    labels = value_labels or {}
    if isinstance(node, Group):
        return f"{'all' if node.op == 'and' else 'any'} of {len(node.children)} conditions"
    if isinstance(node, Behaviour):
        what = {"page": "Viewed a page", "screen": "Viewed a screen", "event": f"Did “{node.name}”"}[
            node.type
        ]
        if node.type != "event" and node.name:
            what += f" named “{node.name}”"
        parts = [what]
        if node.filters:
            parts.append("where " + " and ".join(_filter_words(f, f.target) for f in node.filters))
        c = node.count
        if (c.operator, c.value) == ("eq", 0) or (c.operator, c.value) == ("lt", 1):
            parts = ["Never " + parts[0][0].lower() + parts[0][1:], *parts[1:]]
        elif (c.operator, c.value) != ("gte", 1):
            parts.append(f"{operator_label(c.operator, kind='count')} {c.value} times")
        w = node.window
        if w.start_days_ago is not None and w.end_days_ago == 0:
            parts.append(f"in the last {w.start_days_ago + 1} days")
        elif w.start_days_ago is not None:
            parts.append(f"between {w.start_days_ago} and {w.end_days_ago} days ago")
        return " ".join(parts)
    if isinstance(node, FieldCondition):
        if node.type == "trait":
            return _filter_words(node.filter, f"Trait {node.filter.target}")
        name = _field_name(node.filter.target)
        choices = CONTACT_CHOICES.get(name) or labels.get(name)
        return _filter_words(node.filter, field_label(name), choices=choices)
    if isinstance(node, TagCondition):
        return f"{operator_label(node.operator).capitalize()} tag “{node.value}”"
    if isinstance(node, DealCondition):
        where = " and ".join(
            _filter_words(
                f,
                "deal " + f.target.removesuffix("_id"),
                choices=DEAL_CHOICES.get(f.target) or labels.get(f.target.removesuffix("_id")),
            )
            for f in node.filters
        )
        c = node.count
        if (c.operator, c.value) in (("eq", 0), ("lt", 1)):
            return "Has no deal" + (f" where {where}" if where else "")
        words = operator_label(c.operator, kind="count")
        return f"Has {words} {c.value} deal(s)" + (f" where {where}" if where else "")
    if isinstance(node, SegmentCondition):
        name = (segment_names or {}).get(node.segment_id)
        label = f"“{name}”" if name else f"#{node.segment_id}"
        return f"{'Not in' if node.negate else 'In'} segment {label}"
    if isinstance(node, ConsentCondition):
        return f"Consent to “{node.category}” {'granted' if node.granted else 'not granted'}"
    if isinstance(node, KindCondition):
        return condition_kinds()[node.type].describe(node.data)
    raise TypeError(node)


def _field_name(target: str) -> str:
    """The `field` name a contact column came from (custom fields keep theirs)."""
    for name, (column, _) in CONTACT_FIELDS.items():
        if column == target:
            return name
    return target


def field_label(name: str) -> str:
    """ "lifecycle_stage" -> "Lifecycle stage", "company.domain" -> "Company domain"."""
    return name.replace(".", " ").replace("_", " ").capitalize()


def outline(
    node: Node,
    *,
    flags: dict[str, bool] | None = None,
    segment_names: dict[int, str] | None = None,
    value_labels: dict[str, dict[Any, str]] | None = None,
) -> dict[str, Any]:
    """The definition as nested labels for templates: groups keep their and/or, leaves carry
    their sentence and, given `flags` (leaf_flags), whether they held."""
    if isinstance(node, Group):
        return {
            "group": True,
            "op": "all" if node.op == "and" else "any",
            "children": [
                outline(child, flags=flags, segment_names=segment_names, value_labels=value_labels)
                for child in node.children
            ],
            "require_consent": node.require_consent,
        }
    held = None if flags is None else flags.get(node.path, False)
    label = describe(node, segment_names=segment_names, value_labels=value_labels)
    return {"group": False, "label": label, "held": held}
