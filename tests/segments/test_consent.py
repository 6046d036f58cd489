"""Consent in segments: the `consent` condition, the segment-level `require_consent` flag, and
webhooks never carrying people without it."""

import json

import pytest

from contacts.models import Contact
from segments import services
from segments.definition import builder, compiler
from segments.models import WebhookDelivery
from segments.services import webhooks
from tests.factories import make_admin, make_contact
from tests.segments.helpers import matches, one
from tests.segments.test_webhooks import Receiver

pytestmark = pytest.mark.django_db


def consent(**preferences) -> dict:
    return {"categoryPreferences": preferences, "gpc": False, "timestamp": "2026-11-20T10:00:00+00:00"}


def consenting(email: str, state: dict | None) -> Contact:
    contact = make_contact(email=email, tags=["vip"])
    if state is not None:  # written by the stitching worker in real life
        Contact.objects.filter(pk=contact.pk).update(consent=state)
    return contact


@pytest.fixture
def people():
    yes = consenting("yes@x.io", consent(marketing=True, analytics=False))
    no = consenting("no@x.io", consent(marketing=False, analytics=True))
    other = consenting("other@x.io", consent(analytics=True))
    silent = consenting("silent@x.io", None)  # no consent state at all
    return {yes.pk: "yes", no.pk: "no", other.pk: "other", silent.pk: "silent"}


@pytest.mark.parametrize(
    ("category", "operator", "expected"),
    [
        ("marketing", "granted", {"yes"}),
        ("marketing", "not_granted", {"no", "other", "silent"}),
        ("analytics", "granted", {"no", "other"}),
        ("Marketing", "granted", set()),  # categories match exactly, as sites name them
        ("it's'); DROP TABLE contacts_contact; --", "granted", set()),  # a parameter, never SQL
    ],
)
def test_consent_condition(people, category, operator, expected):
    condition = {"type": "consent", "category": category, "operator": operator}
    assert {people[pk] for pk in matches(one(condition))} == expected
    assert Contact.objects.count() == 4


def test_require_consent_flag_excludes_people_without_it_whatever_the_conditions(people):
    definition = {
        "op": "or",
        "conditions": [{"type": "tag", "operator": "has", "value": "vip"}],
        "require_consent": "marketing",
    }
    assert {people[pk] for pk in matches(definition)} == {"yes"}
    # an empty definition with the flag: everyone who granted it
    assert {
        people[pk] for pk in matches({"op": "and", "conditions": [], "require_consent": "analytics"})
    } == {
        "no",
        "other",
    }


@pytest.mark.parametrize(
    ("definition", "path"),
    [
        (
            one({"type": "consent", "category": "", "operator": "granted"}),
            "definition.conditions[0].category",
        ),
        (one({"type": "consent", "category": 3, "operator": "granted"}), "definition.conditions[0].category"),
        (one({"type": "consent", "category": "m", "operator": "yes"}), "definition.conditions[0].operator"),
        (one({"type": "consent", "category": "m", "extra": 1}), "definition.conditions[0]"),
        (one({"type": "consent", "category": "x" * 101}), "definition.conditions[0].category"),
        ({"op": "and", "conditions": [], "require_consent": ["m"]}, "definition.require_consent"),
        # only the root carries the flag
        (
            {"op": "and", "conditions": [{"op": "or", "conditions": [], "require_consent": "m"}]},
            "definition.conditions[0]",
        ),
    ],
)
def test_invalid_consent_definitions_name_the_node(definition, path):
    with pytest.raises(compiler.DefinitionError) as info:
        compiler.parse(definition)
    assert info.value.path == path


def test_api_refuses_a_bad_consent_condition_with_a_400_naming_it(client):
    client.force_login(make_admin())
    body = {"name": "Bad", "definition": one({"type": "consent", "category": "m", "operator": "maybe"})}
    response = client.post("/api/v1/segments/", json.dumps(body), content_type="application/json")
    assert response.status_code == 400
    assert "definition.conditions[0].operator" in response.content.decode()


def test_consent_is_a_profile_trigger_and_reads_as_a_sentence():
    tree = compiler.parse(
        {"op": "and", "conditions": [{"type": "consent", "category": "marketing"}], "require_consent": "ads"}
    )
    assert compiler.analyse(tree)["triggers"] == ["profile"]
    assert tree.require_consent == "ads"
    assert compiler.describe(tree.children[0]) == "Consent to “marketing” granted"


def test_builder_round_trips_the_consent_condition_and_flag():
    definition = {
        "op": "and",
        "conditions": [{"type": "consent", "category": "marketing", "operator": "not_granted"}],
        "require_consent": "analytics",
    }
    assert builder.fits_builder(definition)
    tree = builder.nodes(definition)
    assert tree["require_consent"] == "analytics"
    from django.http import QueryDict

    data = QueryDict(mutable=True)
    data.update({"r.op": "and", "r.require_consent": "analytics", "r.0.type": "consent"})
    data.update({"r.0.category": "marketing", "r.0.operator": "not_granted"})
    assert builder.from_form(data) == definition
    # a nested group with the flag is JSON-only (the parser refuses it anyway)
    assert not builder.fits_builder(
        {"op": "and", "conditions": [{"op": "or", "conditions": [], "require_consent": "m"}]}
    )


def test_webhooks_never_carry_people_without_the_required_consent(people):
    receiver = Receiver()
    try:
        segment = services.segment_create(
            actor=None,
            name="VIP marketing",
            definition={
                "op": "and",
                "conditions": [{"type": "tag", "operator": "has", "value": "vip"}],
                "require_consent": "marketing",
            },
        )
        webhooks.webhook_create(actor=make_admin(), segment=segment, url=receiver.url, allow_private=True)
        services.segment_refresh(segment=segment)
        webhooks.deliveries_send()
        emails = [json.loads(r["body"])["data"]["contact"]["email"] for r in receiver.requests]
        assert emails == ["yes@x.io"]
        # when the person withdraws marketing consent, they leave (an exit is all that is sent)
        yes = Contact.objects.get(email="yes@x.io")
        Contact.objects.filter(pk=yes.pk).update(consent=consent(marketing=False))
        services.segment_refresh(segment=segment)
        webhooks.deliveries_send()
        kinds = [json.loads(r["body"])["type"] for r in receiver.requests]
        assert kinds == ["segment.entered", "segment.exited"]
        assert WebhookDelivery.objects.count() == 2
    finally:
        receiver.close()


def test_segment_page_states_the_required_consent(client):
    segment = services.segment_create(
        actor=None, name="M", definition={"op": "and", "conditions": [], "require_consent": "marketing"}
    )
    client.force_login(make_admin())
    html = client.get(f"/segments/{segment.pk}/").content.decode()
    assert "Only people who granted consent to “marketing”." in html
