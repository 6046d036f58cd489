"""Segment conditions on computed traits, and the realtime drain refreshing traits first."""

import pytest
from django.utils import timezone

from identity.models import ProfileUpdate
from segments import services as segment_services
from segments.definition import compiler
from tests.factories import make_admin, make_contact, stored_track
from tests.segments.helpers import matches, members, one
from tests.traits.helpers import make_trait
from traits import services

pytestmark = pytest.mark.django_db


def trait_condition(key, operator, value=None):
    leaf = {"type": "computed_trait", "trait": key, "operator": operator}
    if value is not None:
        leaf["value"] = value
    return one(leaf)


@pytest.fixture
def people():
    none, one_order, three = make_contact(), make_contact(), make_contact()
    stored_track(one_order, "Order Completed", properties={"plan": "pro", "sku": "a"})
    for sku in ("a", "b", "b"):
        stored_track(three, "Order Completed", properties={"plan": "team", "sku": sku})
    make_trait("orders", "count", event_name="Order Completed")
    make_trait("plan", "last", property="plan")
    make_trait("skus", "unique_list", property="sku")
    services.traits_recompute()
    return none, one_order, three


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("gte", 1, {1, 2}),
        ("lt", 2, {0, 1}),  # no events: 0 orders
        ("eq", 0, {0}),
        ("neq", 1, {0, 2}),
        ("gt", 2, {2}),
        ("is_set", None, {1, 2}),
        ("is_not_set", None, {0}),
    ],
)
def test_number_trait_conditions(people, operator, value, expected):
    assert matches(trait_condition("orders", operator, value)) == {people[i].pk for i in expected}


def test_text_and_list_trait_conditions(people):
    _, one_order, three = people
    assert matches(trait_condition("plan", "eq", "pro")) == {one_order.pk}
    assert matches(trait_condition("plan", "contains", "EA")) == {three.pk}
    assert matches(trait_condition("skus", "contains", "b")) == {three.pk}
    assert matches(trait_condition("skus", "not_contains", "b")) == {people[0].pk, one_order.pk}


def test_bad_trait_conditions_say_what_is_wrong(people):
    with pytest.raises(compiler.DefinitionError, match="expected a number"):
        compiler.parse(trait_condition("orders", "gt", "many"))
    tree = compiler.parse(trait_condition("nope", "eq", 1))
    with pytest.raises(compiler.DefinitionError, match="no contact trait 'nope'") as error:
        compiler.check_values(tree)
    assert error.value.allowed == ["orders", "plan", "skus"]
    with pytest.raises(compiler.DefinitionError, match="does not apply"):
        compiler.check_values(compiler.parse(trait_condition("skus", "gt", 1)))
    assert compiler.describe(tree.children[0]) == "Computed trait “nope” is 1"


def test_the_drain_refreshes_traits_before_the_segment_sees_them():
    admin = make_admin()
    contact = make_contact()
    make_trait("orders", "count", event_name="Order Completed")
    segment = segment_services.segment_create(
        actor=admin, name="Buyers", definition=trait_condition("orders", "gte", 2)
    )
    stored_track(contact, "Order Completed")
    stored_track(contact, "Order Completed")
    now = timezone.now()
    ProfileUpdate.objects.create(contact=contact, updated_at=now, first_changed_at=now)
    segment_services.profile_updates_process()
    assert members(segment) == {contact.pk}
