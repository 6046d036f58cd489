"""REST API: score model CRUD and a contact's scores with the explanation."""

import pytest
from rest_framework.test import APIClient

from scoring import services
from tests.factories import make_contact, make_user, stored_page
from tests.scoring.helpers import make_model

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(admin_user):
    client = APIClient()
    client.force_authenticate(admin_user)
    return client


def test_create_read_update_delete_a_model(api):
    created = api.post(
        "/api/v1/score-models/",
        {
            "name": "Lead",
            "engagement_rules": [{"kind": "page", "path": "/pricing", "points": 5}],
            "total_cap": 50,
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    pk = created.json()["id"]
    assert api.get("/api/v1/score-models/").json()["results"][0]["name"] == "Lead"
    patched = api.patch(f"/api/v1/score-models/{pk}/", {"total_cap": 80}, format="json")
    assert patched.status_code == 200 and patched.json()["total_cap"] == 80
    assert api.delete(f"/api/v1/score-models/{pk}/").status_code == 204
    assert api.get(f"/api/v1/score-models/{pk}/").status_code == 404


def test_bad_rules_answer_400_with_what_is_wrong(api):
    response = api.post(
        "/api/v1/score-models/",
        {"name": "Lead", "fit_rules": [{"field": "title", "op": "equals", "points": 5}]},
        format="json",
    )
    assert response.status_code == 400
    body = response.json()
    assert "Rule 1: `value`" in str(body)


def test_sales_reads_but_may_not_write(admin_user):
    client = APIClient()
    client.force_authenticate(make_user(role="Sales", username="rep"))
    assert client.get("/api/v1/score-models/").status_code == 200
    assert client.post("/api/v1/score-models/", {"name": "x"}, format="json").status_code == 403


def test_a_contacts_scores_with_their_explanation(api):
    contact = make_contact()
    stored_page(contact, "/pricing")
    stored_page(contact, "/pricing")
    model = make_model(engagement=[{"label": "Pricing", "kind": "page", "path": "/pricing", "points": 5}])
    services.scores_refresh(contact_ids=[contact.pk])
    [score] = api.get(f"/api/v1/contacts/{contact.pk}/scores/").json()
    assert score["model_id"] == model.pk and score["score"] == 10
    assert score["explanation"] == [
        {"part": "engagement", "label": "Pricing", "points": 10, "rule": 0, "occurrences": 2, "raw": 10.0}
    ]
    assert api.get("/api/v1/contacts/999999/scores/").status_code == 404


def test_the_schema_documents_the_operations(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    for path in ("/api/v1/score-models/", "/api/v1/score-models/{id}/", "/api/v1/contacts/{id}/scores/"):
        assert path in schema
