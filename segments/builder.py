"""The HTML builder's form <-> definition mapping.

Each node of the tree has an id that is its position ("r", "r.0", "r.0.2"); its inputs are named
"<id>.<part>" (``r.0.type``, ``r.0.operator``…). Buttons send ``action`` = ``add:<group id>:<type>``,
``group:<group id>`` or ``remove:<id>``; the view applies it and renders the builder again, so the
tree lives in the form itself and needs no JavaScript beyond htmx.

The builder edits one property filter per page/event condition and one deal filter per deal
condition; definitions beyond that (several filters, the API's richer shapes) are edited as JSON.
"""

import json
import re
from typing import Any

from django.http import QueryDict

from cdp_crm.params import parse_id

from . import compiler

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
    return True


def _value_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(_value_text(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def nodes(definition: Any, node_id: str = "r") -> dict[str, Any]:
    """The definition as template-friendly nodes (a group at the top)."""
    definition = definition or {"op": "and", "conditions": []}
    children = []
    for i, child in enumerate(definition.get("conditions", [])):
        child_id = f"{node_id}.{i}"
        if "op" in child and "type" not in child:
            children.append(nodes(child, child_id))
        else:
            children.append(_leaf_node(child, child_id))
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
        if operator not in ("is_set", "is_not_set"):
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
        if where["operator"] not in ("is_set", "is_not_set"):
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
    """add:<group>:<type> | group:<group> | remove:<node>; unknown actions change nothing."""
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
