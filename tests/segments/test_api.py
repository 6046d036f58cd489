import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segments.models import Segment
from tests.factories import make_contact, stored_page, user_model
from tests.segments.test_properties import hostile_definitions

pytestmark = pytest.mark.django_db

PRICING = {
    "op": "and",
    "conditions": [
        {"type": "page", "where": [{"property": "path", "operator": "contains", "value": "/pricing"}]},
        {"type": "event", "name": "Order Completed", "count": {"operator": "eq", "value": 0}},
    ],
}


def test_create_get_patch_delete(marketing_client):
    response = marketing_client.post(
        "/api/v1/segments/", {"name": "Pricing", "definition": PRICING}, content_type="application/json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["kind"] == "dynamic" and body["definition"] == PRICING
    url = f"/api/v1/segments/{body['id']}/"
    assert marketing_client.get(url).json()["name"] == "Pricing"
    response = marketing_client.patch(url, {"name": "Pricing fans"}, content_type="application/json")
    assert response.status_code == 200 and response.json()["name"] == "Pricing fans"
    assert marketing_client.get("/api/v1/segments/").json()["count"] == 1
    assert marketing_client.delete(url).status_code == 204
    assert marketing_client.get(url).status_code == 404


def test_invalid_definition_is_a_400_naming_the_node(marketing_client):
    bad = {
        "op": "and",
        "conditions": [{"type": "page"}, {"type": "trait", "trait": "plan", "operator": "eqq"}],
    }
    response = marketing_client.post(
        "/api/v1/segments/", {"name": "x", "definition": bad}, content_type="application/json"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_definition"
    assert body["fields"]["definition"][0]["path"] == "definition.conditions[1].operator"
    assert not Segment.objects.exists()


def test_cycle_is_a_400(marketing_client):
    a = marketing_client.post("/api/v1/segments/", {"name": "a"}, content_type="application/json").json()
    b = marketing_client.post(
        "/api/v1/segments/",
        {
            "name": "b",
            "definition": {"op": "and", "conditions": [{"type": "segment", "segment_id": a["id"]}]},
        },
        content_type="application/json",
    ).json()
    response = marketing_client.patch(
        f"/api/v1/segments/{a['id']}/",
        {"definition": {"op": "or", "conditions": [{"type": "segment", "segment_id": b["id"]}]}},
        content_type="application/json",
    )
    assert response.status_code == 400 and "cycle" in response.json()["detail"]


def test_members_are_paginated_with_a_count(marketing_client):
    from segments import services

    contacts = [make_contact(email=f"m{i}@x.io") for i in range(5)]
    for contact in contacts:
        stored_page(contact, "/pricing")
    segment = services.segment_create(actor=None, name="p", definition=PRICING)
    services.segment_refresh(segment=segment)
    body = marketing_client.get(f"/api/v1/segments/{segment.pk}/members/?limit=2").json()
    assert body["count"] == 5 and len(body["results"]) == 2 and body["next"]
    assert {r["email"] for r in body["results"]} <= {c.email for c in contacts}


def test_preview_counts_an_unsaved_definition(marketing_client, django_assert_max_num_queries):
    for i in range(3):
        stored_page(make_contact(email=f"p{i}@x.io"), "/pricing")
    make_contact(email="other@x.io")
    with django_assert_max_num_queries(6):
        response = marketing_client.post(
            "/api/v1/segments/preview/", {"definition": PRICING}, content_type="application/json"
        )
    assert response.status_code == 200
    assert response.json()["count"] == 3 and len(response.json()["sample"]) == 3


def test_roles_on_the_api(client, sales_user):
    client.force_login(sales_user)
    assert client.get("/api/v1/segments/").status_code == 200
    response = client.post("/api/v1/segments/", {"name": "x"}, content_type="application/json")
    assert response.status_code == 403
    client.force_login(user_model().objects.create_user(username="nobody", password="x"))
    assert client.get("/api/v1/segments/").status_code == 403
    client.logout()
    assert client.get("/api/v1/segments/").status_code in (401, 403)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(definition=hostile_definitions, name=st.text(max_size=300))
def test_hostile_input_never_gives_a_5xx(marketing_client, definition, name):
    response = marketing_client.post(
        "/api/v1/segments/preview/", {"definition": definition}, content_type="application/json"
    )
    assert response.status_code in (200, 400), response.content[:300]
    response = marketing_client.post(
        "/api/v1/segments/", {"name": name, "definition": definition}, content_type="application/json"
    )
    assert response.status_code in (201, 400), response.content[:300]


def test_webhooks_over_the_api(client, admin_user, marketing_user):
    segment = Segment.objects.create(name="s")
    client.force_login(marketing_user)
    response = client.post(
        f"/api/v1/segments/{segment.pk}/webhooks/",
        {"url": "http://127.0.0.1:9/x", "allow_private": True},
        content_type="application/json",
    )
    assert response.status_code == 403  # only an Admin opens private addresses
    response = client.post(
        f"/api/v1/segments/{segment.pk}/webhooks/",
        {"url": "http://10.1.2.3/x"},
        content_type="application/json",
    )
    assert response.status_code == 400 and "private" in response.json()["detail"]
    client.force_login(admin_user)
    response = client.post(
        f"/api/v1/segments/{segment.pk}/webhooks/",
        {"url": "http://127.0.0.1:9/x", "allow_private": True},
        content_type="application/json",
    )
    assert response.status_code == 201 and response.json()["secret"].startswith("whsec_")
    hook_id = response.json()["id"]
    listed = client.get(f"/api/v1/segments/{segment.pk}/webhooks/").json()
    assert [h["id"] for h in listed] == [hook_id] and "secret" not in listed[0]
    assert client.get(f"/api/v1/segments/{segment.pk}/deliveries/").json()["count"] == 0
    assert client.delete(f"/api/v1/segments/webhooks/{hook_id}/").status_code == 204
    assert client.delete(f"/api/v1/segments/webhooks/{hook_id}/").status_code == 404
