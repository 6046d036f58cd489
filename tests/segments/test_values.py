"""Issue 19.5: segment values are the stored codes of real things, shown by their labels.

A value that names nothing (a lifecycle stage typed as its label, an owner or stage that does not
exist, an option a custom field lacks) is refused with the allowed values instead of counting 0;
operators read as words wherever they are shown; the rules are editable before the segment has a
name."""

import re

import pytest

from contacts.models import Contact, CustomField
from pipeline.models import Pipeline, Stage
from segments import services
from segments.definition import builder, compiler
from segments.models import Segment
from tests.factories import make_company, make_contact, make_user
from tests.segments.helpers import matches, one

pytestmark = pytest.mark.django_db


def lifecycle(operator: str, value) -> dict:
    return one({"type": "field", "field": "lifecycle_stage", "operator": operator, "value": value})


# --- the compiler refuses unknown choice values, listing the allowed ones


def test_a_lifecycle_label_is_refused_with_the_codes_and_the_code_matches():
    leads = {make_contact(email=f"l{i}@x.io", lifecycle_stage="lead").pk for i in range(2)}
    make_contact(email="c@x.io", lifecycle_stage="customer")
    with pytest.raises(compiler.DefinitionError) as info:
        compiler.parse(lifecycle("eq", "Lead"))
    assert info.value.path == "definition.conditions[0].value"
    assert info.value.allowed == ["visitor", "subscriber", "lead", "opportunity", "customer", "other"]
    assert "'Lead' is not a lifecycle stage" in info.value.message
    assert matches(lifecycle("eq", "lead")) == leads


def test_each_value_of_a_list_is_checked_and_deal_status_too():
    with pytest.raises(compiler.DefinitionError) as info:
        compiler.parse(lifecycle("in", ["lead", "Customer"]))
    assert info.value.path == "definition.conditions[0].value[1]"
    deal = one({"type": "deal", "where": [{"field": "status", "operator": "eq", "value": "Open"}]})
    with pytest.raises(compiler.DefinitionError) as info:
        compiler.parse(deal)
    assert info.value.path == "definition.conditions[0].where[0].value"
    assert info.value.allowed == ["open", "won", "lost"]


def test_custom_choice_owner_and_stage_values_must_exist():
    CustomField.objects.create(
        entity="contact", key="plan", label="Plan", field_type="choice", choices=["Free", "Pro"]
    )
    CustomField.objects.create(entity="contact", key="note", label="Note", field_type="text")
    rep = make_user(role="Sales", username="rita")
    stage = Stage.objects.create(pipeline=Pipeline.objects.create(name="Sales"), name="Won")
    pro = make_contact(email="p@x.io", custom_fields={"plan": "Pro"}, owner=rep)
    good = {
        "op": "and",
        "conditions": [
            {"type": "field", "field": "custom.plan", "operator": "in", "value": ["Pro", "Free"]},
            {"type": "field", "field": "custom.note", "operator": "eq", "value": "anything"},
            {"type": "field", "field": "owner", "operator": "eq", "value": rep.pk},
            {"type": "deal", "where": [{"field": "stage", "operator": "neq", "value": stage.pk}]},
        ],
    }
    compiler.check_values(compiler.parse(good))  # known values pass
    cases = [
        (
            {"type": "field", "field": "custom.plan", "operator": "eq", "value": "pro"},
            "definition.conditions[0].value",
            ["Free", "Pro"],
        ),
        (
            {"type": "field", "field": "owner", "operator": "in", "value": [rep.pk, rep.pk + 1000]},
            "definition.conditions[0].value[1]",
            [rep.pk],
        ),
        (
            {"type": "deal", "where": [{"field": "stage", "operator": "eq", "value": stage.pk + 1000}]},
            "definition.conditions[0].where[0].value",
            [stage.pk],
        ),
    ]
    for condition, path, allowed in cases:
        with pytest.raises(compiler.DefinitionError) as info:
            services.segment_create(actor=None, name="x", definition=one(condition))
        assert (info.value.path, info.value.allowed) == (path, allowed)
    assert not Segment.objects.exists()
    assert matches(one(good["conditions"][0])) == {pro.pk}


def test_unknown_values_are_a_400_from_the_api_listing_allowed(marketing_client):
    for url, body in (
        ("/api/v1/segments/", {"name": "Leads", "definition": lifecycle("eq", "Lead")}),
        ("/api/v1/segments/preview/", {"definition": lifecycle("eq", "Lead")}),
    ):
        response = marketing_client.post(url, body, content_type="application/json")
        assert response.status_code == 400, (url, response.content)
        detail = response.json()["fields"]["definition"][0]
        assert detail["path"] == "definition.conditions[0].value"
        assert "lead" in detail["allowed"]
    assert not Segment.objects.exists()


def test_emails_and_domains_compare_lower_cased_on_both_sides():
    acme = make_company(name="Acme", domain="acme.io")
    ada = make_contact(email="ada@acme.io", company=acme)
    nobody = make_contact(email=None, first_name="Anon")

    def field(name, operator, value):
        return one({"type": "field", "field": name, "operator": operator, "value": value})

    assert matches(field("email", "eq", "Ada@ACME.io")) == {ada.pk}
    assert matches(field("email", "in", ["x@y.z", "ADA@acme.io"])) == {ada.pk}
    assert matches(field("company.domain", "eq", "Acme.IO")) == {ada.pk}
    assert matches(field("email", "neq", "ADA@acme.io")) == {nobody.pk}  # no email: "is not" holds
    Contact.objects.filter(pk=nobody.pk).update(traits={"email": "Anon@Acme.IO"})  # as identify sent it
    trait = one({"type": "trait", "trait": "email", "operator": "in", "value": ["anon@acme.io"]})
    assert matches(trait) == {nobody.pk}


# --- one wording of the operators


def test_operators_read_as_words_in_sentences():
    tree = compiler.parse(
        {
            "op": "and",
            "conditions": [
                {
                    "type": "field",
                    "field": "lifecycle_stage",
                    "operator": "in",
                    "value": ["lead", "customer"],
                },
                {"type": "field", "field": "last_seen", "operator": "more_than_days_ago", "value": 30},
                {"type": "field", "field": "created_at", "operator": "gte", "value": "2026-01-01"},
                {"type": "trait", "trait": "seats", "operator": "gte", "value": 5},
                {
                    "type": "deal",
                    "where": [{"field": "status", "operator": "eq", "value": "won"}],
                    "count": {"operator": "gte", "value": 2},
                },
            ],
        }
    )
    assert [compiler.describe(leaf) for leaf in compiler.leaves(tree)] == [
        "Lifecycle stage is one of Lead, Customer",
        "Last seen more than 30 days ago",
        "Created at is on or after 2026-01-01",
        "Trait seats at least 5",
        "Has at least 2 deal(s) where deal status is Won",
    ]
    assert compiler.operator_label("gte") == "at least"
    assert compiler.operator_label("lt", kind="count") == "fewer than"


def test_builder_selects_show_words_and_the_real_values(marketing_client):
    make_user(role="Sales", username="rita", first_name="Rita", last_name="Rep")
    CustomField.objects.create(
        entity="contact", key="plan", label="Plan", field_type="choice", choices=["Free", "Pro"]
    )
    make_contact(email="v@x.io", tags=["vip"])
    form = {
        "name": "",
        "kind": "dynamic",
        "r.op": "and",
        "r.0.type": "field",
        "r.0.field": "lifecycle_stage",
        "r.0.operator": "eq",
        "r.0.value": "",
        "r.1.type": "page",
        "r.1.where_property": "path",
        "r.1.where_operator": "more_than_days_ago",
        "r.1.count_operator": "gte",
        "r.2.type": "field",
        "r.2.field": "owner",
        "r.2.operator": "in",
        "r.3.type": "tag",
        "r.3.operator": "has",
        "r.3.value": "vip",
        "action": "refresh",
    }
    html = marketing_client.post("/segments/new/", form, HTTP_HX_REQUEST="true").content.decode()
    # the lifecycle value is a select of codes with their labels; a choice field offers choice operators
    assert '<select name="r.0.value"' in html and '<option value="lead">Lead</option>' in html
    assert '<option value="eq" selected>is</option>' in html
    assert '<option value="contains">' not in html.split('name="r.1.type"')[0]
    # counts and relative dates in words, never codes
    assert '<option value="gte" selected>at least</option>' in html
    assert '<option value="more_than_days_ago" selected>more than N days ago</option>' in html
    assert ">gte<" not in html and ">more_than_days_ago<" not in html
    # owners by name in a multi-select for "is one of", tags and custom options as pickers
    assert re.search(r'<select name="r\.2\.value"[^>]*data-testid="value-select" multiple', html)
    assert ">Rita Rep</option>" in html
    assert '<option value="vip" selected>vip</option>' in html
    assert '<option value="custom.plan">Plan</option>' in html


def test_picked_values_are_codes_and_ids_and_a_list_for_is_one_of():
    from django.http import QueryDict

    data = QueryDict(mutable=True)
    data.update({"r.op": "and", "r.0.type": "field", "r.0.field": "owner", "r.0.operator": "in"})
    data.setlist("r.0.value", ["3", "4"])
    data["r.0.value_picked"] = "1"
    data.update({"r.1.type": "field", "r.1.field": "custom.plan", "r.1.operator": "eq"})
    data.setlist("r.1.value", ["007"])
    data["r.1.value_picked"] = "1"
    data.update({"r.2.type": "deal", "r.2.where_property": "stage", "r.2.where_operator": "eq"})
    data.setlist("r.2.where_value", ["9"])
    data["r.2.where_value_picked"] = "1"
    conditions = builder.from_form(data)["conditions"]
    assert conditions[0]["value"] == [3, 4]
    assert conditions[1]["value"] == "007"  # an option stays the text it is, not the number 7
    assert conditions[2]["where"][0]["value"] == 9


# --- the rules are editable before the segment has a name


def test_builder_buttons_work_before_a_name_and_a_nameless_save_keeps_the_rules(marketing_client):
    response = marketing_client.post(
        "/segments/new/", {"name": "", "kind": "dynamic", "r.op": "and", "action": "add:r:field"}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert 'name="r.0.type" value="field"' in html
    assert "Give the segment a name" not in html and "is-invalid" not in html
    # every builder button skips the browser's validation of the (required) name
    assert (
        html.count('name="action" value="add:r:')
        == html.count('formnovalidate name="action" value="add:r:')
        == 8
    )
    assert 'formnovalidate name="action" value="remove:r.0"' in html
    # saving without a name: a form error, and the rules are still there
    response = marketing_client.post(
        "/segments/new/",
        {
            "name": "",
            "kind": "dynamic",
            "r.op": "and",
            "r.0.type": "field",
            "r.0.field": "lifecycle_stage",
            "r.0.operator": "eq",
            "r.0.value": "lead",
            "r.0.value_picked": "1",
            "action": "save",
        },
    )
    html = response.content.decode()
    assert response.status_code == 422
    assert "Give the segment a name to save it." in html
    assert '<option value="lead" selected>Lead</option>' in html
    assert not Segment.objects.exists()


def test_a_saved_label_value_is_a_form_error_listing_the_codes(marketing_client):
    form = {
        "name": "Leads",
        "kind": "dynamic",
        "r.op": "and",
        "r.0.type": "field",
        "r.0.field": "lifecycle_stage",
        "r.0.operator": "eq",
        "r.0.value": "Lead",
        "action": "save",
    }
    response = marketing_client.post("/segments/new/", form)
    assert response.status_code == 422
    assert (
        "expected one of visitor, subscriber, lead, opportunity, customer, other" in response.content.decode()
    )
    preview = marketing_client.post("/segments/preview/", form).content.decode()
    assert "is not a lifecycle stage" in preview
    assert not Segment.objects.exists()


def test_segment_page_shows_labels_and_words(marketing_client):
    rita = make_user(role="Sales", username="rita", first_name="Rita", last_name="Rep")
    stage = Stage.objects.create(pipeline=Pipeline.objects.create(name="Sales"), name="Demo")
    segment = services.segment_create(
        actor=None,
        name="Engaged leads",
        definition={
            "op": "and",
            "conditions": [
                {"type": "field", "field": "lifecycle_stage", "operator": "eq", "value": "lead"},
                {"type": "page", "count": {"operator": "gte", "value": 3}, "within_days": 7},
                {"type": "field", "field": "owner", "operator": "eq", "value": rita.pk},
                {"type": "deal", "where": [{"field": "stage", "operator": "eq", "value": stage.pk}]},
            ],
        },
    )
    html = marketing_client.get(segment.get_absolute_url()).content.decode()
    assert "Lifecycle stage is Lead" in html
    assert "Viewed a page at least 3 times in the last 7 days" in html
    assert "Owner is Rita Rep" in html
    assert "Has at least 1 deal(s) where deal stage is Sales / Demo" in html


def test_changing_the_field_fits_the_operator_and_value_to_it(marketing_client):
    form = {
        "name": "",
        "r.op": "and",
        "r.0.type": "field",
        "r.0.field": "lifecycle_stage",  # was email "ends with" "@x.io"
        "r.0.operator": "ends_with",
        "r.0.value": "@x.io",
        "action": "refresh",
    }
    html = marketing_client.post("/segments/new/", form, HTTP_HX_REQUEST="true").content.decode()
    assert '<option value="eq" selected>is</option>' in html
    assert '<option value="ends_with"' not in html and "@x.io" not in html
    assert '<option value="" selected>Choose…</option>' in html
    # a definition written as JSON keeps its operator when it is only shown
    segment = services.segment_create(
        actor=None, name="s", definition=lifecycle("neq", "lead") | {"op": "or"}
    )
    segment.definition["conditions"][0]["operator"] = "starts_with"
    segment.definition["conditions"][0]["value"] = "le"
    Segment.objects.filter(pk=segment.pk).update(definition=segment.definition)
    html = marketing_client.get(f"/segments/{segment.pk}/edit/").content.decode()
    assert '<option value="starts_with" selected>starts with</option>' in html


def test_the_builder_runs_a_fixed_number_of_queries(marketing_client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    pipeline = Pipeline.objects.create(name="Sales")
    rep = make_user(role="Sales", username="rep")
    stage = Stage.objects.create(pipeline=pipeline, name="New")
    segment = services.segment_create(
        actor=None,
        name="All pickers",
        definition={
            "op": "or",
            "conditions": [
                {"type": "field", "field": "owner", "operator": "in", "value": [rep.pk]},
                {"type": "tag", "operator": "has", "value": "tag1"},
                {"type": "deal", "where": [{"field": "stage", "operator": "eq", "value": stage.pk}]},
            ],
        },
    )

    pages = {}

    def queries(url: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            response = marketing_client.get(url)
        assert response.status_code == 200
        pages[url] = response.content.decode()
        return len(captured)

    empty = queries("/segments/new/")  # no conditions: no picker is looked up
    few = queries(f"/segments/{segment.pk}/edit/")
    for i in range(10):
        make_user(role="Sales", username=f"rep{i}")
        Stage.objects.create(pipeline=pipeline, name=f"Stage {i}", position=i)
        make_contact(email=f"t{i}@x.io", tags=[f"tag{i}"])
    assert queries(f"/segments/{segment.pk}/edit/") == few
    # and the pickers hold every owner, stage and tag
    html = pages[f"/segments/{segment.pk}/edit/"]
    assert all(f">{label}</option>" in html for label in ("rep9", "Sales / Stage 9", "tag9"))
    assert few - empty <= 7  # the segment, owners, custom fields, pipelines, stages, tags (+ slack)
    assert queries("/segments/new/") == empty
