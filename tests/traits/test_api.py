"""The traits REST API: definitions CRUD with 400s that say what is wrong, and values."""

import pytest

from tests.factories import make_contact, stored_track
from tests.traits.helpers import make_trait
from traits import services

pytestmark = pytest.mark.django_db


def test_definitions_crud(admin_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        created = admin_client.post(
            "/api/v1/traits/",
            {
                "key": "revenue",
                "name": "Revenue",
                "kind": "sum",
                "property": "total",
                "event_name": "Order Completed",
            },
            content_type="application/json",
        )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["key"] == "revenue" and body["property"] == "total" and body["window_days"] is None
    pk = body["id"]
    assert admin_client.get("/api/v1/traits/").json()["results"][0]["id"] == pk
    with django_capture_on_commit_callbacks(execute=False):
        patched = admin_client.patch(
            f"/api/v1/traits/{pk}/", {"window_days": 30}, content_type="application/json"
        )
    assert patched.status_code == 200 and patched.json()["window_days"] == 30
    assert patched.json()["property"] == "total"  # untouched fields stay
    assert admin_client.delete(f"/api/v1/traits/{pk}/").status_code == 204
    assert admin_client.get(f"/api/v1/traits/{pk}/").status_code == 404


def test_bad_definitions_are_400_naming_the_field(admin_client):
    response = admin_client.post(
        "/api/v1/traits/",
        {
            "key": "x",
            "name": "X",
            "kind": "avg",
            "conditions": [{"property": "a", "operator": "gt", "value": "z"}],
        },
        content_type="application/json",
    )
    assert response.status_code == 400
    fields = response.json()["fields"]
    assert "property" in fields and "compares with a number" in fields["conditions"][0]


def test_sales_reads_but_does_not_write(sales_client):
    assert sales_client.get("/api/v1/traits/").status_code == 200
    denied = sales_client.post("/api/v1/traits/", {"key": "x"}, content_type="application/json")
    assert denied.status_code == 403


def test_a_contacts_values(sales_client):
    contact = make_contact()
    stored_track(contact, "Order Completed", properties={"sku": "a"})
    make_trait("orders", "count")
    make_trait("skus", "unique_list", property="sku")
    make_trait("plan", "last", property="plan")
    services.traits_recompute()
    body = sales_client.get(f"/api/v1/contacts/{contact.pk}/traits/").json()
    assert {row["key"]: row["value"] for row in body} == {"orders": 1, "skus": ["a"], "plan": None}
    assert sales_client.get("/api/v1/contacts/999999/traits/").status_code == 404
