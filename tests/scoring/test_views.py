"""Settings → Scoring and the contact page's lead-score panel."""

import json

import pytest

from scoring import services
from scoring.models import ScoreModel
from tests.factories import make_contact, stored_page
from tests.scoring.helpers import make_model

pytestmark = pytest.mark.django_db


def test_marketing_creates_a_model_from_the_settings_form(
    marketing_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = marketing_client.post(
            "/settings/scoring/new/",
            {
                "name": "Enterprise",
                "enabled": "on",
                "fit_rules": json.dumps([{"field": "title", "op": "contains", "value": "VP", "points": 10}]),
                "engagement_rules": "",
                "total_cap": "100",
            },
        )
    assert response.status_code == 302
    model = ScoreModel.objects.get(name="Enterprise")
    assert model.fit_rules[0]["points"] == 10
    assert len(callbacks) == 1  # the full recompute is queued on commit
    assert "Enterprise" in marketing_client.get("/settings/scoring/").content.decode()


def test_bad_rules_come_back_as_form_errors(admin_client):
    response = admin_client.post(
        "/settings/scoring/new/",
        {
            "name": "M",
            "fit_rules": "[{",
            "engagement_rules": json.dumps([{"kind": "page", "points": 1}]),
            "total_cap": "100",
        },
    )
    assert response.status_code == 422
    html = response.content.decode()
    assert 'data-testid="error-fit_rules"' in html and "Not valid JSON" in html
    response = admin_client.post(
        "/settings/scoring/new/",
        {
            "name": "M",
            "fit_rules": "[]",
            "engagement_rules": json.dumps([{"kind": "page", "points": 1}]),
            "total_cap": "100",
        },
    )
    assert response.status_code == 422
    assert "Rule 1: `path` is required" in response.content.decode()
    assert not ScoreModel.objects.exists()


@pytest.mark.parametrize("text", ["999999999999", "-1", "NaN", '{"label": "x"}', '"rules"'])
def test_rules_that_are_json_but_not_a_list_are_a_form_error(admin_client, text):
    response = admin_client.post(
        "/settings/scoring/new/", {"name": "M", "fit_rules": text, "engagement_rules": "", "total_cap": "100"}
    )
    assert response.status_code == 422
    assert "Expected a JSON list of rules" in response.content.decode()
    assert not ScoreModel.objects.exists()


def test_rules_text_over_the_limit_is_a_form_error(admin_client):
    response = admin_client.post(
        "/settings/scoring/new/",
        {"name": "M", "fit_rules": "[" + " " * 200_001 + "]", "engagement_rules": "", "total_cap": "100"},
    )
    assert response.status_code == 422
    assert "At most 200,000 characters" in response.content.decode()


def test_sales_may_not_open_the_scoring_settings(sales_client):
    assert sales_client.get("/settings/scoring/").status_code == 403
    assert sales_client.post("/settings/scoring/new/", {"name": "x"}).status_code == 403


def test_the_contact_panel_explains_the_score_and_escapes_untrusted_labels(sales_client):
    contact = make_contact()
    for _ in range(3):
        stored_page(contact, "/pricing")
    model = make_model(
        name="<b>Model</b>",
        engagement=[{"label": "<script>alert(1)</script>", "kind": "page", "path": "/pricing", "points": 4}],
    )
    services.scores_refresh(contact_ids=[contact.pk])
    html = sales_client.get(f"/scoring/contact/{contact.pk}/").content.decode()
    assert 'data-testid="score-value">12<' in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert "<b>Model</b>" not in html
    assert f'data-testid="score-{model.pk}"' in html
    detail = sales_client.get(f"/contacts/{contact.pk}/").content.decode()
    assert f'hx-get="/scoring/contact/{contact.pk}/"' in detail


def test_the_panel_needs_a_role(client, django_user_model):
    contact = make_contact()
    client.force_login(django_user_model.objects.create_user("nobody", password="x"))
    assert client.get(f"/scoring/contact/{contact.pk}/").status_code == 403
