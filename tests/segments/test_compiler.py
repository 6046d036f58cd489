"""Every condition type and operator against a real database."""

import datetime as dt

import pytest
from django.utils import timezone

from contacts.models import Contact
from pipeline.models import Deal, Pipeline, Stage
from segments.definition import compiler
from segments.models import Membership
from tests.factories import make_company, make_contact, make_user, stored_page, stored_track
from tests.segments.helpers import matches, one

pytestmark = pytest.mark.django_db


@pytest.fixture
def people():
    ada = make_contact(email="ada@acme.com", first_name="Ada", last_name="Lovelace", title="CTO")
    bob = make_contact(email="bob@example.org", first_name="Bob", phone="+441234")
    cy = make_contact(first_name="Cy")  # no email
    return ada, bob, cy


# ---- field ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("eq", "ada@acme.com", {"ada"}),
        ("neq", "ada@acme.com", {"bob", "cy"}),
        ("contains", "ACME", {"ada"}),
        ("not_contains", "acme", {"bob", "cy"}),
        ("starts_with", "bob@", {"bob"}),
        ("ends_with", "@acme.com", {"ada"}),
        ("in", ["bob@example.org", "nobody@x.io"], {"bob"}),
        ("is_set", None, {"ada", "bob"}),
        ("is_not_set", None, {"cy"}),
        ("gt", "b", {"bob"}),
        ("gte", "ada@acme.com", {"ada", "bob"}),
        ("lt", "b", {"ada"}),
        ("lte", "ada@acme.com", {"ada"}),
    ],
)
def test_field_text_operators(people, operator, value, expected):
    ada, bob, cy = people
    names = {ada.pk: "ada", bob.pk: "bob", cy.pk: "cy"}
    condition = {"type": "field", "field": "email", "operator": operator}
    if value is not None:
        condition["value"] = value
    assert {names[i] for i in matches(one(condition))} == expected


def test_field_company_owner_and_identified(people):
    _ada, bob, cy = people
    rep = make_user()
    company = make_company(name="Acme Corp", domain="acme.com", industry="Software")
    Contact.objects.filter(pk=bob.pk).update(company=company, owner=rep)
    Contact.objects.filter(pk=cy.pk).update(is_identified=False)
    assert bob.pk in matches(
        one({"type": "field", "field": "company.industry", "operator": "eq", "value": "Software"})
    )
    assert matches(one({"type": "field", "field": "owner", "operator": "eq", "value": rep.pk})) == {bob.pk}
    assert bob.pk not in matches(one({"type": "field", "field": "owner", "operator": "is_not_set"}))
    assert matches(one({"type": "field", "field": "is_identified", "operator": "eq", "value": False})) == {
        cy.pk
    }


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("within_last_days", 7, {"recent"}),
        ("more_than_days_ago", 7, {"old"}),
        ("gt", "2020-01-01", {"recent", "old"}),
        ("lt", "2020-01-01", set()),
        ("is_not_set", None, {"never"}),
    ],
)
def test_field_dates_and_relative_dates(operator, value, expected):
    now = timezone.now()
    recent = make_contact(email="r@x.io")
    old = make_contact(email="o@x.io")
    never = make_contact(email="n@x.io")
    Contact.objects.filter(pk=recent.pk).update(last_seen=now - dt.timedelta(days=2))
    Contact.objects.filter(pk=old.pk).update(last_seen=now - dt.timedelta(days=30))
    names = {recent.pk: "recent", old.pk: "old", never.pk: "never"}
    condition = {"type": "field", "field": "last_seen", "operator": operator}
    if value is not None:
        condition["value"] = value
    assert {names[i] for i in matches(one(condition))} == expected


def test_field_date_eq_is_that_day():
    contact = make_contact(email="d@x.io")
    Contact.objects.filter(pk=contact.pk).update(first_seen=dt.datetime(2026, 3, 4, 23, 30, tzinfo=dt.UTC))
    assert matches(
        one({"type": "field", "field": "first_seen", "operator": "eq", "value": "2026-03-04"})
    ) == {contact.pk}
    assert not matches(one({"type": "field", "field": "first_seen", "operator": "eq", "value": "2026-03-05"}))


def test_custom_field():
    contact = make_contact(email="c@x.io")
    Contact.objects.filter(pk=contact.pk).update(custom_fields={"tier": "gold"})
    make_contact(email="d@x.io")
    assert matches(one({"type": "field", "field": "custom.tier", "operator": "eq", "value": "gold"})) == {
        contact.pk
    }


# ---- trait ---------------------------------------------------------------------------------


@pytest.fixture
def traited():
    pro = make_contact(email="pro@x.io")
    free = make_contact(email="free@x.io")
    bare = make_contact(email="bare@x.io")
    weird = make_contact(email="weird@x.io")
    Contact.objects.filter(pk=pro.pk).update(
        traits={"plan": "pro", "seats": 12, "signed_up": "2026-11-20T10:00:00Z", "beta": True}
    )
    Contact.objects.filter(pk=free.pk).update(traits={"plan": "free", "seats": 1, "signed_up": "2024-01-05"})
    # Values of the wrong type must never make the query fail.
    Contact.objects.filter(pk=weird.pk).update(traits={"plan": ["x"], "seats": "many", "signed_up": "soon"})
    return {pro.pk: "pro", free.pk: "free", bare.pk: "bare", weird.pk: "weird"}


@pytest.mark.parametrize(
    ("operator", "key", "value", "expected"),
    [
        ("eq", "plan", "pro", {"pro"}),
        ("neq", "plan", "pro", {"free", "bare", "weird"}),
        ("eq", "seats", 12, {"pro"}),
        ("eq", "beta", True, {"pro"}),
        ("contains", "plan", "RO", {"pro"}),
        ("not_contains", "plan", "o", {"free", "bare", "weird"}),
        ("starts_with", "plan", "fr", {"free"}),
        ("ends_with", "plan", "ee", {"free"}),
        ("in", "plan", ["pro", "enterprise"], {"pro"}),
        ("is_set", "plan", None, {"pro", "free", "weird"}),
        ("is_not_set", "plan", None, {"bare"}),
        ("gt", "seats", 1, {"pro"}),
        ("gte", "seats", 1, {"pro", "free"}),
        ("lt", "seats", 12, {"free"}),
        ("lte", "seats", 12.5, {"pro", "free"}),
        ("gte", "signed_up", "2025-01-01", {"pro"}),
        ("within_last_days", "signed_up", 3650, {"pro", "free"}),
        ("more_than_days_ago", "signed_up", 365, {"free"}),
    ],
)
def test_trait_operators(traited, operator, key, value, expected):
    condition = {"type": "trait", "trait": key, "operator": operator}
    if value is not None:
        condition["value"] = value
    assert {traited[i] for i in matches(one(condition))} == expected


def test_trait_key_is_a_parameter_not_sql():
    contact = make_contact(email="k@x.io")
    key = "a'); DROP TABLE contacts_contact; --"
    Contact.objects.filter(pk=contact.pk).update(traits={key: "v", "0": "zero"})
    assert matches(one({"type": "trait", "trait": key, "operator": "eq", "value": "v"})) == {contact.pk}
    # A numeric-looking key is a key, not an array index.
    assert matches(one({"type": "trait", "trait": "0", "operator": "eq", "value": "zero"})) == {contact.pk}


# ---- tag -----------------------------------------------------------------------------------


def test_tags():
    vip = make_contact(email="v@x.io", tags=["vip", "beta"])
    other = make_contact(email="o@x.io")
    assert matches(one({"type": "tag", "operator": "has", "value": "VIP"})) == {vip.pk}
    assert matches(one({"type": "tag", "operator": "not_has", "value": "vip"})) == {other.pk}


# ---- page / event --------------------------------------------------------------------------


def test_page_count_with_window_uses_days():
    curious = make_contact(email="c@x.io")
    once = make_contact(email="o@x.io")
    stale = make_contact(email="s@x.io")
    for _ in range(3):
        stored_page(curious, "/pricing")
    stored_page(once, "/pricing/teams")
    for _ in range(3):
        stored_page(stale, "/pricing", days_ago=10)
    condition = {
        "type": "page",
        "where": [{"property": "path", "operator": "contains", "value": "/pricing"}],
        "count": {"operator": "gte", "value": 3},
        "within_days": 7,
    }
    assert matches(one(condition)) == {curious.pk}
    del condition["within_days"]
    assert matches(one(condition)) == {curious.pk, stale.pk}
    condition["between"] = {"start_days_ago": 12, "end_days_ago": 8}
    assert matches(one(condition)) == {stale.pk}


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("eq", 0, {"none"}),
        ("eq", 2, {"two"}),
        ("neq", 0, {"one", "two"}),
        ("neq", 2, {"none", "one"}),
        ("gt", 1, {"two"}),
        ("gte", 1, {"one", "two"}),
        ("gte", 0, {"none", "one", "two"}),
        ("lt", 2, {"none", "one"}),
        ("lt", 0, set()),
        ("lte", 1, {"none", "one"}),
    ],
)
def test_event_count_operators(operator, value, expected):
    none = make_contact(email="n@x.io")
    one_ = make_contact(email="1@x.io")
    two = make_contact(email="2@x.io")
    stored_track(one_, "Order Completed")
    stored_track(two, "Order Completed", days_ago=1)
    stored_track(two, "Order Completed", days_ago=40)
    stored_track(none, "Signed Up")
    names = {none.pk: "none", one_.pk: "one", two.pk: "two"}
    condition = {"type": "event", "name": "Order Completed", "count": {"operator": operator, "value": value}}
    assert {names[i] for i in matches(one(condition))} == expected


def test_event_property_filters_read_the_event():
    big = make_contact(email="b@x.io")
    small = make_contact(email="s@x.io")
    stored_track(big, "Order Completed", properties={"revenue": 250, "coupon": "SPRING"})
    stored_track(small, "Order Completed", properties={"revenue": "lots"})
    stored_track(small, "Order Completed", properties={"revenue": 20})
    gt = {"property": "revenue", "operator": "gt", "value": 100}
    assert matches(one({"type": "event", "name": "Order Completed", "where": [gt]})) == {big.pk}
    coupon = {"property": "coupon", "operator": "starts_with", "value": "spr"}
    assert matches(one({"type": "event", "name": "Order Completed", "where": [coupon]})) == {big.pk}
    no_big = {
        "type": "event",
        "name": "Order Completed",
        "where": [gt],
        "count": {"operator": "eq", "value": 0},
    }
    assert small.pk in matches(one(no_big))


def test_bots_are_left_out_unless_asked_for():
    human = make_contact(email="h@x.io")
    bot = make_contact(email="b@x.io")
    stored_page(human, "/docs")
    stored_page(bot, "/docs", is_bot=True)
    condition = {"type": "page", "where": [{"property": "path", "operator": "eq", "value": "/docs"}]}
    assert matches(one(condition)) == {human.pk}
    assert matches(one({**condition, "include_bots": True})) == {human.pk, bot.pk}


def test_page_name_and_property_filters_read_events():
    contact = make_contact(email="p@x.io")
    stored_page(contact, "/blog/x", name="Blog", properties={"referrer": "https://news.ycombinator.com"})
    hn = {"property": "referrer", "operator": "contains", "value": "ycombinator"}
    assert matches(one({"type": "page", "where": [hn]})) == {contact.pk}
    assert matches(one({"type": "page", "name": "Blog"})) == {contact.pk}
    assert not matches(one({"type": "page", "name": "Pricing"}))


def test_rollups_and_events_agree_on_windows():
    """The same path condition answered from DailyActivity (path only) and ContactEvent (path
    plus an always-true property filter) gives the same members, window edges included."""
    contacts = [make_contact(email=f"w{i}@x.io") for i in range(6)]
    for i, contact in enumerate(contacts):
        stored_page(contact, "/pricing", days_ago=i * 2, properties={"x": 1})
    for within in (1, 2, 3, 5, 9, 12):
        rollup = {"type": "page", "where": [{"property": "path", "operator": "eq", "value": "/pricing"}]}
        events = {**rollup, "where": [*rollup["where"], {"property": "x", "operator": "eq", "value": 1}]}
        assert matches(one({**rollup, "within_days": within})) == matches(
            one({**events, "within_days": within})
        )


# ---- deal ----------------------------------------------------------------------------------


def test_deal_conditions():
    stage = Stage.objects.create(pipeline=Pipeline.objects.create(name="Sales"), name="Demo")
    buyer = make_contact(email="buyer@x.io")
    lead = make_contact(email="lead@x.io")
    nobody = make_contact(email="nobody@x.io")
    Deal.objects.create(pipeline=stage.pipeline, stage=stage, title="Big", amount=5000, contact=buyer)
    Deal.objects.create(
        pipeline=stage.pipeline,
        stage=stage,
        title="Lost",
        amount=10,
        contact=lead,
        status="lost",
        lost_reason="x",
    )
    open_deal = {"type": "deal", "where": [{"field": "status", "operator": "eq", "value": "open"}]}
    assert matches(one(open_deal)) == {buyer.pk}
    big = {"type": "deal", "where": [{"field": "amount", "operator": "gte", "value": 1000}]}
    assert matches(one(big)) == {buyer.pk}
    no_deal = {"type": "deal", "count": {"operator": "eq", "value": 0}}
    assert matches(one(no_deal)) == {nobody.pk}
    created = {"type": "deal", "where": [{"field": "created_at", "operator": "within_last_days", "value": 1}]}
    assert matches(one(created)) == {buyer.pk, lead.pk}


# ---- segment, groups ------------------------------------------------------------------------


def test_segment_membership_condition_reads_current_members():
    from segments.models import Segment

    inner = Segment.objects.create(name="Inner")
    a = make_contact(email="a@x.io")
    b = make_contact(email="b@x.io")
    now = timezone.now()
    Membership.objects.create(segment=inner, contact=a, entered_at=now)
    Membership.objects.create(segment=inner, contact=b, entered_at=now, exited_at=now)
    assert matches(one({"type": "segment", "segment_id": inner.pk, "operator": "in"})) == {a.pk}
    assert matches(one({"type": "segment", "segment_id": inner.pk, "operator": "not_in"})) == {b.pk}


def test_nested_groups_and_empty_groups():
    vip = make_contact(email="v@acme.com", tags=["vip"])
    acme = make_contact(email="x@acme.com")
    other = make_contact(email="o@x.io", tags=["vip"])
    definition = {
        "op": "and",
        "conditions": [
            {"type": "field", "field": "email", "operator": "ends_with", "value": "@acme.com"},
            {
                "op": "or",
                "conditions": [
                    {"type": "tag", "operator": "has", "value": "vip"},
                    {"op": "or", "conditions": []},
                ],
            },
        ],
    }
    assert matches(definition) == {vip.pk}
    definition["op"] = "or"
    assert matches(definition) == {vip.pk, acme.pk, other.pk}


def test_merged_contacts_never_match():
    winner = make_contact(email="w@x.io")
    make_contact(email="l@x.io", merged_into=winner)
    assert matches({"op": "and", "conditions": []}) == {winner.pk}


def test_scope_restricts_every_subquery():
    a = make_contact(email="a@x.io")
    b = make_contact(email="b@x.io")
    for contact in (a, b):
        stored_track(contact, "Login")
        stored_track(contact, "Login")
    condition = one({"type": "event", "name": "Login", "count": {"operator": "gte", "value": 2}})
    assert matches(condition, scope=[a.pk]) == {a.pk}
    never = one({"type": "event", "name": "Login", "count": {"operator": "lt", "value": 2}})
    assert matches(never, scope=[a.pk]) == set()


# ---- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("definition", "path"),
    [
        ({"op": "xor", "conditions": []}, "definition.op"),
        ({"op": "and", "conditions": [{"type": "nope"}]}, "definition.conditions[0].type"),
        ({"op": "and", "conditions": [{"type": "event"}]}, "definition.conditions[0].name"),
        (
            {
                "op": "and",
                "conditions": [{"type": "field", "field": "password", "operator": "eq", "value": "x"}],
            },
            "definition.conditions[0].field",
        ),
        (
            {"op": "and", "conditions": [{"type": "trait", "trait": "a", "operator": "gt", "value": True}]},
            "definition.conditions[0].value",
        ),
        (
            # A date in other scripts' digits is not an ISO date (Python's \d would take it).
            {
                "op": "and",
                "conditions": [
                    {
                        "type": "trait",
                        "trait": "a",
                        "operator": "gt",
                        "value": "\u0662\u0660\u0662\u0666-01-01",
                    }
                ],
            },
            "definition.conditions[0].value",
        ),
        (
            {"op": "and", "conditions": [{"type": "page", "within_days": 0}]},
            "definition.conditions[0].within_days",
        ),
        (
            {
                "op": "and",
                "conditions": [
                    {"op": "or", "conditions": [{"type": "tag", "operator": "has", "value": "a\x00"}]}
                ],
            },
            "definition.conditions[0].conditions[0].value",
        ),
        (
            {
                "op": "and",
                "conditions": [{"type": "event", "name": "x", "count": {"operator": "gte", "value": -1}}],
            },
            "definition.conditions[0].count.value",
        ),
        (
            {
                "op": "and",
                "conditions": [
                    {"type": "field", "field": "email", "operator": "within_last_days", "value": 3}
                ],
            },
            "definition.conditions[0].operator",
        ),
        ({"op": "and", "conditions": "x"}, "definition.conditions"),
    ],
)
def test_invalid_definitions_name_the_bad_node(definition, path):
    with pytest.raises(compiler.DefinitionError) as info:
        compiler.parse(definition)
    assert info.value.path == path


def test_depth_and_size_limits():
    deep = {"op": "and", "conditions": []}
    for _ in range(10):
        deep = {"op": "and", "conditions": [deep, {"type": "tag", "operator": "has", "value": "x"}]}
    with pytest.raises(compiler.DefinitionError, match="nest"):
        compiler.parse(deep)
    wide = {
        "op": "or",
        "conditions": [{"type": "tag", "operator": "has", "value": str(i)} for i in range(100)],
    }
    with pytest.raises(compiler.DefinitionError, match="at most"):
        compiler.parse(wide)


def test_labels_read_as_sentences():
    tree = compiler.parse(
        {
            "op": "and",
            "conditions": [
                {
                    "type": "page",
                    "where": [{"property": "path", "operator": "contains", "value": "/pricing"}],
                    "count": {"operator": "gte", "value": 3},
                    "within_days": 7,
                },
                {"type": "event", "name": "Order Completed", "count": {"operator": "eq", "value": 0}},
                {"type": "segment", "segment_id": 4, "operator": "not_in"},
                {"type": "trait", "trait": "signup", "operator": "within_last_days", "value": 30},
            ],
        }
    )
    labels = [compiler.describe(leaf, segment_names={4: "Churned"}) for leaf in compiler.leaves(tree)]
    assert labels == [
        "Viewed a page where path contains /pricing at least 3 times in the last 7 days",
        "Never did “Order Completed”",
        "Not in segment “Churned”",
        "Trait signup within the last 30 days",
    ]
