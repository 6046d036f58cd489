"""The `score` condition kind: a contact's lead score in a model (scoring app), compared with a
number. ``{"type": "score", "model": 3, "op": "gte", "value": 50}``; ops gte, gt, lte, lt. A
contact no rule of the model gives points has a score of 0 (no row), so a comparison that 0
passes matches every contact but those whose row fails it. Triggers "profile": the drain
refreshes scores (settings.PROFILE_UPDATE_DERIVED_HOOKS) for exactly the contacts it then
re-evaluates, and "profile" is among the keys of every such contact."""

import operator

from django.db.models import Q

from scoring import selectors as scoring_selectors
from segments.definition.compiler import ConditionKind, Context, DefinitionError

OPS = {"gte": operator.ge, "gt": operator.gt, "lte": operator.le, "lt": operator.lt}
SYMBOLS = {"gte": "≥", "gt": ">", "lte": "≤", "lt": "<"}
NEGATED = {"gte": "lt", "gt": "lte", "lte": "gt", "lt": "gte"}


def _parse(obj: dict, path: str) -> tuple[int, str, int]:
    model = obj.get("model")
    if type(model) is not int or model < 1:
        raise DefinitionError(f"{path}.model", "expected the id of a score model.")
    op = obj.get("op", "gte")
    if op not in OPS:
        raise DefinitionError(f"{path}.op", "expected one of the comparisons.", allowed=list(OPS))
    value = obj.get("value")
    if type(value) is not int or not -1_000_000 <= value <= 1_000_000:
        raise DefinitionError(f"{path}.value", "expected a whole number.")
    return model, op, value


def _compile(data: tuple[int, str, int], ctx: Context) -> Q:
    model, op, value = data
    if OPS[op](0, value):  # contacts with no row pass: everyone but the rows that fail
        failing = scoring_selectors.contacts_scoring(
            model_id=model, op=NEGATED[op], value=value, contact_ids=ctx.scope
        )
        return ~Q(pk__in=failing)
    return Q(
        pk__in=scoring_selectors.contacts_scoring(model_id=model, op=op, value=value, contact_ids=ctx.scope)
    )


def _describe(data: tuple[int, str, int]) -> str:
    model, op, value = data
    name = dict(scoring_selectors.score_model_choices()).get(model, f"model #{model}")
    return f"Lead score “{name}” {SYMBOLS[op]} {value}"


def _check(data: tuple[int, str, int]) -> None:
    if data[0] not in dict(scoring_selectors.score_model_choices()):
        raise DefinitionError("model", f"no score model has the id {data[0]}.")


SCORE_KIND = ConditionKind(
    keys=frozenset({"model", "op", "value"}),
    parse=_parse,
    compile=_compile,
    describe=_describe,
    check=_check,
)
