import pytest

from predictions.models import Goal, Prediction, PredictionModel
from tests.factories import make_contact

from .helpers import GOAL, trained_model

pytestmark = pytest.mark.django_db


def test_marketing_creates_a_model_from_the_settings_page(marketing_client):
    assert marketing_client.get("/settings/predictions/new/").status_code == 200
    response = marketing_client.post(
        "/settings/predictions/new/",
        {
            "name": "Orders",
            "goal": "event",
            "event_name": GOAL,
            "horizon_days": 30,
            "min_positives": 100,
            "min_negatives": 100,
        },
    )
    model = PredictionModel.objects.get()
    assert response.status_code == 302 and response["Location"] == model.get_absolute_url()
    assert model.goal == Goal.EVENT and model.event_name == GOAL


def test_an_event_goal_without_its_event_is_a_form_error(marketing_client):
    response = marketing_client.post(
        "/settings/predictions/new/",
        {"name": "Orders", "goal": "event", "horizon_days": 30, "min_positives": 100, "min_negatives": 100},
    )
    assert response.status_code == 200 and "Name the track event" in response.content.decode()
    assert not PredictionModel.objects.exists()


def test_a_rep_sees_the_model_page_without_its_controls(sales_client):
    model = trained_model()
    html = sales_client.get(model.get_absolute_url()).content.decode()
    assert 'data-testid="verdict"' in html and "AUC" in html and "Lift in the top decile" in html
    assert 'data-testid="train"' not in html
    assert sales_client.get("/settings/predictions/").status_code == 200
    assert sales_client.post(f"/settings/predictions/{model.pk}/train/").status_code == 403
    assert sales_client.get(f"/settings/predictions/{model.pk}/edit/").status_code == 403
    assert sales_client.post(f"/settings/predictions/{model.pk}/delete/").status_code == 403
    assert PredictionModel.objects.filter(pk=model.pk).exists()


def test_a_refused_model_says_which_minimum_is_unmet(marketing_client):
    from predictions import services

    model = services.prediction_model_create(actor=None, name="Deals", goal=Goal.DEAL_WON)
    services.prediction_model_train(model=model)
    html = marketing_client.get(model.get_absolute_url()).content.decode()
    assert "Not published" in html and "positives in the training history (at least 100 needed)" in html


def test_the_contact_page_slot_shows_the_score_and_escaped_reasons(sales_client):
    model = trained_model(name="<b>Buyers</b>")
    prediction = Prediction.objects.filter(model=model).order_by("-probability").first()
    page = sales_client.get(f"/contacts/{prediction.contact_id}/").content.decode()
    assert f"/predictions/contact/{prediction.contact_id}/" in page
    html = sales_client.get(f"/predictions/contact/{prediction.contact_id}/").content.decode()
    assert "&lt;b&gt;Buyers&lt;/b&gt;" in html and "<b>Buyers" not in html
    assert 'data-testid="reasons"' in html and prediction.explanation[0]["label"] in html
    nobody = make_contact(email="nobody@example.com")
    assert (
        "No published predictions" in sales_client.get(f"/predictions/contact/{nobody.pk}/").content.decode()
    )
