"""Evaluating segment definitions and reading memberships (the stored activity they run on comes
from tests.factories.identity)."""

import datetime as dt

from django.utils import timezone

from segments.definition import compiler
from segments.models import Segment


def matches(definition: dict, *, scope: list[int] | None = None) -> set[int]:
    tree = compiler.parse(definition)
    ctx = compiler.Context(today=timezone.now().astimezone(dt.UTC).date(), scope=scope)
    return set(compiler.matching_contacts(tree, ctx).values_list("pk", flat=True))


def one(condition: dict) -> dict:
    return {"op": "and", "conditions": [condition]}


def members(segment: Segment) -> set[int]:
    return set(segment.memberships.filter(exited_at__isnull=True).values_list("contact_id", flat=True))
