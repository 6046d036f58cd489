"""The HTML builder's form <-> definition mapping.

Each node of the tree has an id that is its position ("r", "r.0", "r.0.2"); its inputs are named
"<id>.<part>" (``r.0.type``, ``r.0.operator``…). Buttons send ``action`` = ``add:<group id>:<type>``,
``group:<group id>`` or ``remove:<id>``; the view applies it and renders the builder again, so the
tree lives in the form itself and needs no JavaScript beyond htmx.

The builder edits one property filter per page/event condition and one deal filter per deal
condition; definitions beyond that (several filters, the API's richer shapes) are edited as JSON.

Fields with a known set of values (lifecycle stage, owner, deal status and stage, tags, custom
choice fields) get a select of those values with their labels (``choices``, from
`selectors.builder_choices`); the option value is the stored code, so what people pick is what
matches. Changing a field or operator re-renders the builder (``action=refresh``) so the value
input follows it. A select marks itself with ``<id>.<part>_picked`` so its values are read as a
list of codes, never split on commas.
"""

import json
import re
from typing import Any

from django.http import QueryDict

from core.params import parse_id
from segments.definition import compiler

# ASCII digits only: str.isdigit() also takes "²" and "①", which int() refuses.
_INT = re.compile(r"-?[0-9]{1,15}")

LEAF_TYPES = ["page", "event", "field", "trait", "tag", "deal", "segment", "consent"]
NEW_LEAVES: dict[str, dict[str, Any]] = {
    "page": {"type": "page", "where": [{"property": "path", "operator": "contains", "value": ""}]},
    "event": {"type": "event", "name": ""},
    "field": {"type": "field", "field": "email", "operator": "ends_with", "value": ""},
    "trait": {"type": "trait", "trait": "", "operator": "eq", "value": ""},
    "tag": {"type": "tag", "operator": "has", "value": ""},
    "deal": {"type": "deal", "where": [{"field": "status", "operator": "eq", "value": "open"}]},
    "segment": {"type": "segment", "segment_id": None, "operator": "in"},
    "consent": {"type": "consent", "category": "marketing", "operator": "granted"},
}


def fits_builder(definition: Any, *, root: bool = True) -> bool:
    """Whether the builder can show this definition without losing anything."""
    if definition in (None, {}):
        return True
    keys = {"op", "conditions", "require_consent"} if root else {"op", "conditions"}
    if not isinstance(definition, dict) or set(definition) - keys:
        return False
    for child in definition.get("conditions", []):
        if not isinstance(child, dict):
            return False
        if "op" in child and "type" not in child:
            if not fits_builder(child, root=False):
                return False
        elif len(child.get("where", [])) > 1 or "include_bots" in child:
            return False
        elif child.get("type") not in LEAF_TYPES and child.get("type") in compiler.condition_kinds():
            return False  # kinds of other apps' data are edited as JSON
    return True


def _value_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(_value_text(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _selected(value: Any) -> list[str]:
    """The option values a stored value selects."""
    values = value if isinstance(value, list) else [] if value in (None, "") else [value]
    return [_value_text(v) for v in values]


def _operators(allowed: Any, current: str, *, kind: str = "") -> list[tuple[str, str]]:
    """A select's operators in words; an operator the field does not offer (a definition written
    as JSON) stays listed so re-rendering never changes the rule behind the user's back."""
    choices = compiler.operator_choices(allowed, kind=kind)
    if current and current not in {op for op, _ in choices}:
        choices.append((current, compiler.operator_label(current, kind=kind)))
    return choices


def _field_kind(name: str, choices: dict[str, Any]) -> str:
    if name in choices.get("field", {}):
        return "choice"
    if name.startswith("custom."):
        return choices.get("custom_kinds", {}).get(name, "json")
    return compiler.CONTACT_FIELDS.get(name, ("", "text"))[1]


# Operators offered per field kind; custom fields' kinds are the CustomFieldType values.
_KIND_OPERATORS: dict[str, set[str]] = {
    **compiler.KIND_OPS,
    "choice": {"eq", "neq", "in", "is_set", "is_not_set"},
    "boolean": compiler.KIND_OPS["bool"],
    "text": compiler.TEXT_OPS,
}


def _offer(leaf: dict, choices: dict[str, Any]) -> tuple[set[str], str, list | None]:
    """For a field or deal condition: (operators offered, their label kind, value options or None)."""
    if leaf.get("type") == "field":
        name = leaf.get("field", "")
        field_kind = _field_kind(name, choices)
        options = choices.get("field", {}).get(name)
    else:
        where = (leaf.get("where") or [{}])[0]
        name = where.get("field", "")
        field_kind = compiler.DEAL_FIELDS.get(name, ("", "text"))[1]
        options = choices.get("deal", {}).get(name)
        if options is not None:
            field_kind = "choice"
    label_kind = "date" if field_kind in ("date", "day") else ""
    return _KIND_OPERATORS.get(field_kind, compiler.ALL_OPS), label_kind, options


def _decorate(node: dict[str, Any], leaf: dict, choices: dict[str, Any]) -> None:
    """What the template needs beyond the values: operator words, the pickers and their options."""
    kind = node["type"]
    node["value_choices"] = node["where_choices"] = None  # None: a text input
    node["count_operators"] = _operators(compiler.COUNT_OPS, node["count_operator"], kind="count")
    if kind == "field":
        allowed, label_kind, node["value_choices"] = _offer(leaf, choices)
        node["operators"] = _operators(allowed, node["operator"], kind=label_kind)
        node["field_known"] = node["field"] in compiler.CONTACT_FIELDS or node["field"] in dict(
            choices.get("custom_fields", [])
        )
    elif kind == "trait":
        node["operators"] = _operators(compiler.ALL_OPS, node["operator"])
    elif kind == "tag":
        node["operators"] = _operators(["has", "not_has"], node["operator"])
        node["value_choices"] = choices.get("tag") or None  # no tags yet: type one
    elif kind in ("page", "event"):
        node["where_operators"] = _operators(compiler.ALL_OPS, node["where_operator"])
    elif kind == "deal":
        allowed, label_kind, node["where_choices"] = _offer(leaf, choices)
        node["where_operators"] = _operators(allowed, node["where_operator"], kind=label_kind)
    if node["value_choices"] is not None:
        node["selected"] = _selected(leaf.get("value"))
        node["value_choices"] = _with_current(node["value_choices"], node["selected"])
        node["value_size"] = min(len(node["value_choices"]), 6)  # rows of an "is one of" list
    if node["where_choices"] is not None:
        where = (leaf.get("where") or [{}])[0]
        node["where_selected"] = _selected(where.get("value"))
        node["where_choices"] = _with_current(node["where_choices"], node["where_selected"])
        node["where_size"] = min(len(node["where_choices"]), 6)


def refit(definition: Any, choices: dict[str, Any]) -> Any:
    """After a field changed: an operator the new field does not offer becomes "is", and a value
    that is not one of its options is cleared (a select cannot show it). For `from_form`'s
    output, whose parts are all strings and lists."""
    if not isinstance(definition, dict):
        return definition
    for child in definition.get("conditions", []):
        if not isinstance(child, dict):
            continue
        if "op" in child and "type" not in child:
            refit(child, choices)
            continue
        if child.get("type") == "field":
            target = child
        elif child.get("type") == "deal" and child.get("where") and isinstance(child["where"][0], dict):
            target = child["where"][0]
        else:
            continue
        allowed, _, options = _offer(child, choices)
        if target.get("operator") not in allowed:
            target["operator"] = "eq" if "eq" in allowed else sorted(allowed)[0]
        if options is not None and "value" in target:
            codes = {code for code, _ in options}
            values = target["value"] if isinstance(target["value"], list) else [target["value"]]
            kept = [v for v in values if _value_text(v) in codes]
            target["value"] = kept if target["operator"] == "in" else (kept[-1] if kept else "")
    return definition


def _with_current(options: list[tuple[str, str]], selected: list[str]) -> list[tuple[str, str]]:
    """The options plus any selected value they lack (shown as is, so the server's error about it
    and the select agree)."""
    known = {value for value, _ in options}
    return list(options) + [(v, v) for v in selected if v not in known]


def nodes(definition: Any, node_id: str = "r", *, choices: dict[str, Any] | None = None) -> dict[str, Any]:
    """The definition as template-friendly nodes (a group at the top)."""
    definition = definition or {"op": "and", "conditions": []}
    choices = choices or {}
    children = []
    for i, child in enumerate(definition.get("conditions", [])):
        child_id = f"{node_id}.{i}"
        if "op" in child and "type" not in child:
            children.append(nodes(child, child_id, choices=choices))
        else:
            leaf = _leaf_node(child, child_id)
            _decorate(leaf, child, choices)
            children.append(leaf)
    node = {"id": node_id, "is_group": True, "op": definition.get("op", "and"), "children": children}
    if node_id == "r":
        node["require_consent"] = _value_text(definition.get("require_consent"))
    return node


def _leaf_node(leaf: dict, node_id: str) -> dict[str, Any]:
    where = (leaf.get("where") or [{}])[0] if leaf.get("where") else {}
    count = leaf.get("count") or {}
    return {
        "id": node_id,
        "is_group": False,
        "type": leaf.get("type", ""),
        "name": leaf.get("name", ""),
        "field": leaf.get("field", ""),
        "trait": leaf.get("trait", ""),
        "category": leaf.get("category", ""),
        "operator": leaf.get("operator", ""),
        "value": _value_text(leaf.get("value")),
        "segment_id": leaf.get("segment_id") or "",
        "where_property": where.get("property", where.get("field", "")),
        "where_operator": where.get("operator", ""),
        "where_value": _value_text(where.get("value")),
        "count_operator": count.get("operator", "gte"),
        "count_value": count.get("value", 1),
        "within_days": leaf.get("within_days", ""),
    }


def _typed(text: str, *, as_list: bool = False) -> Any:
    """Form text to the JSON value a marketer most likely meant: numbers and true/false as such."""
    if as_list:
        return [_typed(part.strip()) for part in text.split(",") if part.strip()]
    text = text.strip()
    if text in ("true", "false"):
        return text == "true"
    if _INT.fullmatch(text):
        return int(text)
    return float(text) if _is_float(text) else text


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.lower() not in ("nan", "inf", "-inf", "infinity", "-infinity")


def _int_or_text(text: str) -> Any:
    text = text.strip()
    number = parse_id(text)
    return text if number is None else number


def from_form(data: QueryDict, node_id: str = "r") -> dict[str, Any]:
    """Rebuild the definition from the builder's inputs (values typed as `_typed` guesses)."""
    prefix = node_id + "."
    parts = {key[len(prefix) :].split(".", 1)[0] for key in data if key.startswith(prefix)}
    child_ids = sorted((part for part in parts if parse_id(part) is not None), key=int)
    conditions = []
    for index in child_ids:
        child_id = f"{node_id}.{index}"
        if f"{child_id}.op" in data:
            conditions.append(from_form(data, child_id))
        elif f"{child_id}.type" in data:
            conditions.append(_leaf_from_form(data, child_id))
    definition: dict[str, Any] = {"op": data.get(f"{node_id}.op", "and"), "conditions": conditions}
    if node_id == "r" and data.get("r.require_consent", "").strip():
        definition["require_consent"] = data["r.require_consent"].strip()
    return definition


def _leaf_from_form(data: QueryDict, node_id: str) -> dict[str, Any]:
    def get(part: str) -> str:
        return data.get(f"{node_id}.{part}", "")

    kind = get("type")
    leaf: dict[str, Any] = {"type": kind}
    operator = get("operator")
    is_list = operator == "in"
    if kind in ("page", "event"):
        if kind == "event" or get("name"):
            leaf["name"] = get("name").strip()
        if get("where_property").strip():
            where = {"property": get("where_property").strip(), "operator": get("where_operator")}
            if where["operator"] not in ("is_set", "is_not_set"):
                raw = get("where_value")
                where["value"] = (
                    raw
                    if where["property"] in ("path", "name") and where["operator"] != "in"
                    else _typed(raw, as_list=where["operator"] == "in")
                )
            leaf["where"] = [where]
        leaf["count"] = {
            "operator": get("count_operator") or "gte",
            "value": _int_or_text(get("count_value") or "1"),
        }
        if get("within_days").strip():
            leaf["within_days"] = _int_or_text(get("within_days"))
    elif kind in ("field", "trait"):
        leaf[kind] = get(kind).strip()
        leaf["operator"] = operator
        if operator not in ("is_set", "is_not_set") and f"{node_id}.value_picked" in data:
            # codes from a select: ids are numbers, everything else (choices, options) stays text
            as_id = kind == "field" and leaf["field"] in ("owner", "company")
            leaf["value"] = _picked(data.getlist(f"{node_id}.value"), as_id=as_id, as_list=is_list)
        elif operator not in ("is_set", "is_not_set"):
            raw = get("value")
            if operator in compiler.RELATIVE_OPS:
                leaf["value"] = _int_or_text(raw)
            elif kind == "field" and leaf["field"] in ("owner", "company"):
                leaf["value"] = _typed(raw, as_list=is_list)
            elif kind == "field" and compiler.CONTACT_FIELDS.get(leaf["field"], ("", "text"))[1] == "text":
                leaf["value"] = [p.strip() for p in raw.split(",") if p.strip()] if is_list else raw
            else:
                leaf["value"] = _typed(raw, as_list=is_list)
    elif kind == "tag":
        leaf["operator"] = operator or "has"
        leaf["value"] = get("value")
    elif kind == "deal":
        where = {"field": get("where_property") or "status", "operator": get("where_operator") or "eq"}
        if where["operator"] not in ("is_set", "is_not_set") and f"{node_id}.where_value_picked" in data:
            where["value"] = _picked(
                data.getlist(f"{node_id}.where_value"),
                as_id=compiler.DEAL_FIELDS.get(where["field"], ("", "text"))[1] == "id",
                as_list=where["operator"] == "in",
            )
        elif where["operator"] not in ("is_set", "is_not_set"):
            raw = get("where_value")
            text_field = compiler.DEAL_FIELDS.get(where["field"], ("", "text"))[1] == "text"
            where["value"] = (
                raw
                if text_field and where["operator"] != "in"
                else _typed(raw, as_list=where["operator"] == "in")
            )
            if where["operator"] in compiler.RELATIVE_OPS:
                where["value"] = _int_or_text(raw)
        leaf["where"] = [where]
        leaf["count"] = {
            "operator": get("count_operator") or "gte",
            "value": _int_or_text(get("count_value") or "1"),
        }
    elif kind == "segment":
        leaf["segment_id"] = _int_or_text(get("segment_id"))
        leaf["operator"] = operator or "in"
    elif kind == "consent":
        leaf["category"] = get("category").strip()
        leaf["operator"] = operator or "granted"
    return leaf


def _picked(values: list[str], *, as_id: bool, as_list: bool) -> Any:
    picked = [_int_or_text(v) if as_id else v for v in values if v != ""]
    if as_list:
        return picked
    return picked[-1] if picked else ""


def leaf_kinds(definition: Any) -> set[str]:
    """The condition types a definition holds (which pickers the builder needs)."""
    if not isinstance(definition, dict):
        return set()
    kinds = set()
    for child in definition.get("conditions", []) if isinstance(definition.get("conditions"), list) else []:
        if isinstance(child, dict) and "op" in child and "type" not in child:
            kinds |= leaf_kinds(child)
        elif isinstance(child, dict) and isinstance(child.get("type"), str):
            kinds.add(child["type"])
    return kinds


def _find_group(definition: dict, node_id: str) -> dict | None:
    parts = node_id.split(".")[1:]
    node = definition
    for part in parts:
        children = node.get("conditions", [])
        index = parse_id(part)
        if index is None or index >= len(children):
            return None
        node = children[index]
    return node


def apply_action(definition: dict, action: str) -> dict:
    """add:<group>:<type> | group:<group> | remove:<node>; unknown actions ("refresh", after a
    field or operator changed) change nothing: the builder is rendered again."""
    verb, _, rest = action.partition(":")
    if verb == "add":
        group_id, _, kind = rest.partition(":")
        group = _find_group(definition, group_id)
        if group is not None and "op" in group and kind in NEW_LEAVES:
            group.setdefault("conditions", []).append(json.loads(json.dumps(NEW_LEAVES[kind])))
    elif verb == "group":
        group = _find_group(definition, rest)
        if group is not None and "op" in group:
            group.setdefault("conditions", []).append({"op": "or", "conditions": []})
    elif verb == "remove" and rest.count(".") >= 1:
        parent_id, _, index_text = rest.rpartition(".")
        parent = _find_group(definition, parent_id)
        index = parse_id(index_text)
        if parent is not None and index is not None and index < len(parent.get("conditions", [])):
            del parent["conditions"][index]
    return definition
