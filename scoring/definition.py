"""The rules of a score model: their JSON shapes, checked into typed rules with errors a form or
an API client can show.

Fit rule (contact and company fields, custom fields included; no decay)::

    {"label": "VP or Head", "field": "title", "op": "contains", "value": "VP", "points": 10}

  `field`: first_name, last_name, email, phone, title, lifecycle_stage, tags, owner, is_identified,
  custom.<key>, trait.<key>, company.name, company.domain, company.industry, company.size,
  company.custom.<key>. `op`: equals, not_equals, contains, starts_with, ends_with, in (a list),
  is_set, is_not_set; on custom.*, trait.* and company.custom.* also gt, gte, lt, lte (numbers).
  `points`: positive or negative.

Engagement rule (per occurrence, from the identity projection)::

    {"label": "Pricing views", "kind": "page", "match": "contains", "path": "/pricing",
     "points": 5, "max_points": 20, "half_life_days": 30}
    {"label": "Demo requested", "kind": "event", "event": "Demo Requested",
     "where": [{"property": "plan", "op": "equals", "value": "pro"}],
     "points": 15, "within_days": 90}

  `kind` page (`match` equals, contains or starts_with a `path`) or event (a track event by
  name; emails arrive as track events too, e.g. "Email Opened"), with optional property
  conditions (`where`: equals, not_equals, contains, exists, gt, gte, lt, lte). `points` per
  occurrence, `max_points` caps the rule (its absolute value), and at most one of
  `half_life_days` (an occurrence counts half after N days, a quarter after 2N: decay by whole
  UTC days) or `within_days` (only the last N days, today included).
"""

from dataclasses import dataclass, field
from typing import Any

from core.errors import DomainError

TEXT_FIELDS = ("first_name", "last_name", "email", "phone", "title", "lifecycle_stage")
COMPANY_FIELDS = ("name", "domain", "industry", "size")
TEXT_OPS = ("equals", "not_equals", "contains", "starts_with", "ends_with", "in", "is_set", "is_not_set")
NUMBER_OPS = ("gt", "gte", "lt", "lte")
PAGE_MATCHES = ("equals", "contains", "starts_with")
PROPERTY_OPS = ("equals", "not_equals", "contains", "exists", "gt", "gte", "lt", "lte")
MAX_RULES = 50
MAX_POINTS = 10_000
MAX_DAYS = 3650


@dataclass(frozen=True)
class FitRule:
    index: int
    label: str
    field: str  # as written: "title", "custom.plan", "company.industry", ...
    op: str
    value: Any
    points: int


@dataclass(frozen=True)
class Condition:
    property: str
    op: str
    value: Any


@dataclass(frozen=True)
class EngagementRule:
    index: int
    label: str
    kind: str  # "page" or "event"
    match: str  # page: equals / contains / starts_with
    key: str  # page: the path; event: the event name
    points: int
    max_points: int | None
    half_life_days: int | None
    within_days: int | None
    where: tuple[Condition, ...] = field(default=())


@dataclass(frozen=True)
class Rules:
    fit: tuple[FitRule, ...]
    engagement: tuple[EngagementRule, ...]

    @property
    def decays(self) -> bool:
        """Whether scores move with time alone (a decay or a time frame)."""
        return any(r.half_life_days or r.within_days for r in self.engagement)


def _int(value: Any, *, low: int, high: int) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or not low <= value <= high:
        return None
    return value


def _optional_days(raw: dict, name: str, errors: list[str]) -> int | None:
    value = raw.get(name)
    if value in (None, ""):
        return None
    days = _int(value, low=1, high=MAX_DAYS)
    if days is None:
        errors.append(f"`{name}` is a whole number of days from 1 to {MAX_DAYS}.")
    return days


def _text(raw: dict, name: str, errors: list[str], *, max_length: int, what: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not value.strip():
        errors.append(f"`{name}` is required: {what}.")
        return ""
    if len(value) > max_length or "\x00" in value:
        errors.append(f"`{name}` is at most {max_length} characters.")
        return ""
    return value.strip()


def _field_kind(name: str) -> str | None:
    """ "text", "json" (custom/trait/company custom), "tags", "owner", "bool"; None: unknown."""
    if name in TEXT_FIELDS or (
        name.startswith("company.") and name.removeprefix("company.") in COMPANY_FIELDS
    ):
        return "text"
    for prefix in ("custom.", "trait.", "company.custom."):
        if name.startswith(prefix) and 0 < len(name) - len(prefix) <= 100:
            return "json"
    return {"tags": "tags", "owner": "owner", "is_identified": "bool"}.get(name)


def _fit_rule(index: int, raw: Any) -> tuple[FitRule | None, list[str]]:
    errors: list[str] = []
    if not isinstance(raw, dict):
        return None, ["A rule is an object with field, op, value and points."]
    name = raw.get("field")
    kind = _field_kind(name) if isinstance(name, str) else None
    if kind is None:
        errors.append(
            "`field` is one of " + ", ".join(TEXT_FIELDS) + ", tags, owner, is_identified, custom.<key>, "
            "trait.<key>, company.name, company.domain, company.industry, company.size, company.custom.<key>."
        )
    op = raw.get("op")
    allowed = {
        "text": TEXT_OPS,
        "json": TEXT_OPS + NUMBER_OPS,
        "tags": ("contains", "is_set", "is_not_set"),
        "owner": ("is_set", "is_not_set"),
        "bool": ("equals",),
    }.get(kind or "", TEXT_OPS)
    if op not in allowed:
        errors.append(f"`op` for this field is one of: {', '.join(allowed)}.")
    value = raw.get("value")
    if op in NUMBER_OPS:
        if isinstance(value, bool) or not isinstance(value, int | float):
            errors.append("`value` is a number for gt, gte, lt and lte.")
    elif op == "in":
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            errors.append("`value` is a non-empty list of texts for `in`.")
        elif len(value) > 100:
            errors.append("`value` holds at most 100 texts.")
    elif op == "equals" and kind == "bool":
        if not isinstance(value, bool):
            errors.append("`value` is true or false.")
    elif op in ("is_set", "is_not_set"):
        value = None
    elif not isinstance(value, str) or not value.strip() or len(value) > 200 or "\x00" in value:
        errors.append("`value` is a text of 1 to 200 characters.")
    points = _int(raw.get("points"), low=-MAX_POINTS, high=MAX_POINTS)
    if points is None or points == 0:
        errors.append(f"`points` is a whole number from -{MAX_POINTS} to {MAX_POINTS}, not 0.")
    label = raw.get("label")
    if label is not None and (not isinstance(label, str) or len(label) > 100):
        errors.append("`label` is a text of at most 100 characters.")
    if errors:
        return None, errors
    if isinstance(value, str):
        value = value.strip()
    label = (label or "").strip() or f"{name} {op.replace('_', ' ')}" + (
        f" {value}" if value is not None else ""
    )
    return FitRule(index=index, label=label[:100], field=name, op=op, value=value, points=points), []


def _condition(raw: Any) -> tuple[Condition | None, str | None]:
    if not isinstance(raw, dict):
        return None, "A property condition is an object with property, op and value."
    prop = raw.get("property")
    if not isinstance(prop, str) or not prop.strip() or len(prop) > 100 or "\x00" in prop:
        return None, "`property` is a property name of 1 to 100 characters."
    op = raw.get("op")
    if op not in PROPERTY_OPS:
        return None, f"`op` of a property condition is one of: {', '.join(PROPERTY_OPS)}."
    value = raw.get("value")
    if op in NUMBER_OPS:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None, "`value` is a number for gt, gte, lt and lte."
    elif op == "exists":
        value = None
    elif isinstance(value, bool | int | float):
        value = str(value).lower() if isinstance(value, bool) else str(value)
    elif not isinstance(value, str) or len(value) > 200 or "\x00" in value:
        return None, "`value` is a text of at most 200 characters."
    return Condition(property=prop.strip(), op=op, value=value), None


def _engagement_rule(index: int, raw: Any) -> tuple[EngagementRule | None, list[str]]:
    errors: list[str] = []
    if not isinstance(raw, dict):
        return None, ["A rule is an object with kind, points and a page path or an event name."]
    kind = raw.get("kind")
    match, key, where = "equals", "", ()
    if kind == "page":
        match = raw.get("match", "contains")
        if match not in PAGE_MATCHES:
            errors.append(f"`match` is one of: {', '.join(PAGE_MATCHES)}.")
        key = _text(raw, "path", errors, max_length=500, what="the page path to match, e.g. /pricing")
    elif kind == "event":
        key = _text(raw, "event", errors, max_length=200, what="the track event's name")
        conditions = raw.get("where") or []
        if not isinstance(conditions, list) or len(conditions) > 10:
            errors.append("`where` is a list of at most 10 property conditions.")
            conditions = []
        parsed = []
        for item in conditions:
            condition, error = _condition(item)
            if error:
                errors.append(error)
            else:
                parsed.append(condition)
        where = tuple(parsed)
    else:
        errors.append("`kind` is page or event.")
    points = _int(raw.get("points"), low=-MAX_POINTS, high=MAX_POINTS)
    if points is None or points == 0:
        errors.append(
            f"`points` (per occurrence) is a whole number from -{MAX_POINTS} to {MAX_POINTS}, not 0."
        )
    max_points = raw.get("max_points")
    if max_points in (None, ""):
        max_points = None
    else:
        max_points = _int(max_points, low=1, high=MAX_POINTS * 100)
        if max_points is None:
            errors.append("`max_points` (the rule's cap) is a whole number of 1 or more.")
    half_life = _optional_days(raw, "half_life_days", errors)
    within = _optional_days(raw, "within_days", errors)
    if half_life and within:
        errors.append("A rule has a decay (`half_life_days`) or a time frame (`within_days`), not both.")
    label = raw.get("label")
    if label is not None and (not isinstance(label, str) or len(label) > 100):
        errors.append("`label` is a text of at most 100 characters.")
    if errors:
        return None, errors
    label = (label or "").strip() or (f"Viewed {key}" if kind == "page" else key)
    return EngagementRule(
        index=index,
        label=label[:100],
        kind=kind,
        match=match,
        key=key,
        points=points,
        max_points=max_points,
        half_life_days=half_life,
        within_days=within,
        where=where,
    ), []


def parse(*, fit_rules: Any, engagement_rules: Any) -> Rules:
    """Typed rules, or DomainError whose `fields` name the list and the rule ("fit_rules": [
    "rule 2: `points` is ..."])."""
    errors: dict[str, list[str]] = {}
    parsed: dict[str, list] = {"fit_rules": [], "engagement_rules": []}
    for name, raw, parse_one in (
        ("fit_rules", fit_rules, _fit_rule),
        ("engagement_rules", engagement_rules, _engagement_rule),
    ):
        if raw in (None, ""):
            raw = []
        if not isinstance(raw, list):
            errors[name] = ["A list of rules (JSON array)."]
            continue
        if len(raw) > MAX_RULES:
            errors[name] = [f"At most {MAX_RULES} rules."]
            continue
        for index, item in enumerate(raw):
            rule, problems = parse_one(index, item)
            if problems:
                errors.setdefault(name, []).extend(f"Rule {index + 1}: {p}" for p in problems)
            else:
                parsed[name].append(rule)
    if not errors and not parsed["fit_rules"] and not parsed["engagement_rules"]:
        errors["fit_rules"] = ["Give the model at least one rule (fit or engagement)."]
    if errors:
        raise DomainError("The score model's rules are not valid.", fields=errors)
    return Rules(fit=tuple(parsed["fit_rules"]), engagement=tuple(parsed["engagement_rules"]))
