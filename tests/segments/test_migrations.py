import importlib

import pytest
from django.apps import apps

from segments.definition import compiler
from segments.models import Segment
from tests.factories import make_contact
from tests.segments.helpers import matches

pytestmark = pytest.mark.django_db

choice_values_as_codes = importlib.import_module(
    "segments.migrations.0004_choice_values_as_codes"
).choice_values_as_codes


def _stage(value) -> dict:
    return {
        "type": "field",
        "field": "lifecycle_stage",
        "operator": "in" if isinstance(value, list) else "eq",
        "value": value,
    }


def test_saved_labels_become_codes_and_the_segment_compiles_and_matches_again():
    customer = make_contact(email="c@x.io", lifecycle_stage="customer")
    make_contact(email="l@x.io", lifecycle_stage="lead")
    definition = {
        "op": "and",
        "conditions": [
            {"op": "or", "conditions": [_stage("Customer"), _stage([" OPPORTUNITY", "customer"])]},
            {
                "type": "deal",
                "where": [{"field": "status", "operator": "neq", "value": "Lost"}],
                "count": {"operator": "gte", "value": 0},
            },
        ],
    }
    saved = Segment.objects.create(name="Old labels", definition=definition)
    untouched = Segment.objects.create(name="Codes", definition={"op": "and", "conditions": [_stage("lead")]})
    untouched_before = Segment.objects.get(pk=untouched.pk).updated_at
    with pytest.raises(compiler.DefinitionError):
        compiler.parse(saved.definition)

    choice_values_as_codes(apps, None)

    fixed = Segment.objects.get(pk=saved.pk).definition
    inner = fixed["conditions"][0]["conditions"]
    assert inner[0]["value"] == "customer"
    assert inner[1]["value"] == ["opportunity", "customer"]
    assert fixed["conditions"][1]["where"][0]["value"] == "lost"
    assert matches(fixed) == {customer.pk}
    assert Segment.objects.get(pk=untouched.pk).updated_at == untouched_before


def test_values_that_are_no_choice_stay_for_the_segment_page_to_name():
    saved = Segment.objects.create(name="Typo", definition={"op": "and", "conditions": [_stage("Custmer")]})
    choice_values_as_codes(apps, None)
    definition = Segment.objects.get(pk=saved.pk).definition
    assert definition["conditions"][0]["value"] == "Custmer"
    with pytest.raises(compiler.DefinitionError, match="Custmer"):
        compiler.parse(definition)
