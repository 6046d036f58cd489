"""Ids written with digits that are not ASCII. "²" and "①" pass str.isdigit() but int() refuses
them (a 500 where a view trusted isdigit()); "١٢" (Arabic-Indic) passes int() as 12, so it named
another record than the one the form offered. Every id read from a request goes through
core.params.parse_id (ASCII digits only): a form error or a 4xx, never a 500 or a wrong row."""

import pytest
from django.urls import reverse

from contacts.models import Contact
from pipeline.models import Deal
from segments import services as segment_services
from segments.models import Segment
from tests.factories import make_company, make_contact, make_pipeline, make_user, stages_of
from tests.segments.helpers import members

pytestmark = pytest.mark.django_db

SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
CIRCLED = str.maketrans("0123456789", "⓪①②③④⑤⑥⑦⑧⑨")
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
DIGITS = pytest.mark.parametrize(
    "digits", [SUPERSCRIPT, CIRCLED, ARABIC_INDIC], ids=["superscript", "circled", "arabic-indic"]
)
# Where int() was already guarded by `except ValueError`, only the digits int() accepts misled it.
INT_ACCEPTS = pytest.mark.parametrize("digits", [ARABIC_INDIC], ids=["arabic-indic"])


def spelled(number: int, digits: dict) -> str:
    """`number` in other digits: "²³" for 23 in superscript."""
    return str(number).translate(digits)


@pytest.fixture
def marketer(client):
    client.force_login(make_user(role="Marketing", username="digits-marketer"))
    return client


def _flashed(response) -> list[str]:
    return [str(m) for m in response.wsgi_request._messages]


@DIGITS
def test_removing_members_by_a_non_ascii_id_is_refused_and_changes_nothing(marketer, digits):
    segment = segment_services.segment_create(actor=None, name="Picked", kind="static")
    ada = make_contact(email="ada@digits.test")
    segment_services.segment_members_add(actor=None, segment=segment, contact_ids=[ada.pk])
    response = marketer.post(
        f"/segments/{segment.pk}/members/change/", {"action": "remove", "ids": [spelled(ada.pk, digits)]}
    )
    assert response.status_code == 302
    assert any("not a contact id" in m for m in _flashed(response))
    assert members(segment) == {ada.pk}


@DIGITS
def test_adding_members_by_a_non_ascii_id_is_refused(marketer, digits):
    segment = segment_services.segment_create(actor=None, name="Picked", kind="static")
    ada = make_contact(email="ada@digits.test")
    response = marketer.post(
        f"/segments/{segment.pk}/members/change/",
        {"action": "add", "ids": [str(ada.pk), spelled(ada.pk, digits)]},
    )
    assert response.status_code == 302
    assert any("not a contact id" in m for m in _flashed(response))
    assert members(segment) == set()


@DIGITS
def test_a_pasted_or_uploaded_id_in_other_digits_matches_no_contact(marketer, digits):
    segment = segment_services.segment_create(actor=None, name="Picked", kind="static")
    ada = make_contact(email="ada@digits.test")
    response = marketer.post(
        f"/segments/{segment.pk}/members/change/", {"entries": f"{spelled(ada.pk, digits)}\n"}
    )
    assert response.status_code == 302
    assert "1 entries matched no contact." in _flashed(response)
    assert members(segment) == set()
    # the service says the same of a CSV file's id column
    result = segment_services.segment_members_import_csv(
        actor=None, segment=segment, data=f"id\n{spelled(ada.pk, digits)}\n{ada.pk}\n".encode()
    )
    assert result == {"added": 1, "not_found": 1}


def _builder(**leaf) -> dict:
    data = {"name": "Digits", "kind": "dynamic", "mode": "builder", "r.op": "and", "action": "save"}
    data.update({f"r.0.{key}": value for key, value in leaf.items()})
    return data


@DIGITS
@pytest.mark.parametrize("field", ["count_value", "within_days"])
def test_a_count_or_window_in_other_digits_is_a_form_error(marketer, digits, field):
    leaf = {"type": "event", "name": "Order Completed", "count_operator": "gte", "count_value": "1"}
    response = marketer.post("/segments/new/", _builder(**{**leaf, field: spelled(12, digits)}))
    assert response.status_code == 422
    assert "expected a whole number" in response.content.decode()
    assert not Segment.objects.exists()


@DIGITS
def test_builder_actions_and_inputs_with_other_digits_in_their_position_do_nothing(marketer, digits):
    leaf = {"type": "event", "name": "Order Completed", "count_operator": "gte", "count_value": "1"}
    # "remove the first condition", its position written in other digits
    data = {**_builder(**leaf), "action": f"remove:r.{spelled(0, digits)}"}
    response = marketer.post("/segments/new/", data, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert 'name="r.0.name" value="Order Completed"' in response.content.decode()
    # an input whose position is in other digits is no condition of the tree
    data = {**_builder(), f"r.{spelled(0, digits)}.type": "event", f"r.{spelled(0, digits)}.name": "X"}
    data["action"] = "add:r:page"
    html = marketer.post("/segments/new/", data, HTTP_HX_REQUEST="true").content.decode()
    assert 'name="r.0.type" value="page"' in html and 'name="r.1.type"' not in html


@DIGITS
def test_deal_signals_for_an_id_in_other_digits_are_400(client, digits):
    client.force_login(make_user(role="Sales", username="digits-sales"))
    stage = stages_of(make_pipeline())[0]
    deal = Deal.objects.create(pipeline=stage.pipeline, stage=stage, title="Acme")
    response = client.get(f"/deals/signals/?deals={deal.pk},{spelled(deal.pk, digits)}")
    assert response.status_code == 400
    assert "comma-separated list of deal ids" in response.content.decode()


@INT_ACCEPTS
def test_the_merge_log_filter_ignores_a_contact_id_in_other_digits(admin_client, digits):
    ada = make_contact(email="ada@digits.test")
    response = admin_client.get(reverse("identity:merge_list"), {"contact": spelled(ada.pk, digits)})
    assert response.status_code == 200 and response.context["contact_id"] is None


@INT_ACCEPTS
def test_the_duplicate_merge_page_for_ids_in_other_digits_is_404(admin_client, digits):
    first, second = make_contact(first_name="Ada"), make_contact(first_name="Ada")
    params = {"winner": spelled(first.pk, digits), "loser": spelled(second.pk, digits)}
    assert admin_client.get(reverse("contacts_tools:merge"), params).status_code == 404
    assert admin_client.post(reverse("contacts_tools:merge"), params).status_code == 404
    assert Contact.objects.filter(merged_into__isnull=True).count() == 2


@INT_ACCEPTS
def test_a_company_picked_by_an_id_in_other_digits_is_a_form_error(admin_client, digits):
    acme = make_company(name="Acme", domain="acme.com")
    response = admin_client.post(
        "/contacts/new/",
        {"first_name": "Ada", "company": f"Acme (#{spelled(acme.pk, digits)})", "lifecycle_stage": "lead"},
    )
    assert response.status_code == 422
    assert 'data-testid="error-company"' in response.content.decode()
    assert not Contact.objects.exists()
