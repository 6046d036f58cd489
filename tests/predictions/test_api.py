import pytest

from predictions.models import ModelStatus, Prediction, PredictionModel
from tests.factories import make_pipeline

from .helpers import trained_model

pytestmark = pytest.mark.django_db

JSON = "application/json"


def test_marketing_creates_reads_patches_and_deletes_a_model(marketing_client):
    pipeline = make_pipeline()
    response = marketing_client.post(
        "/api/v1/predictions/models/",
        {"name": "Deals won", "goal": "deal_won", "pipeline": pipeline.pk, "horizon_days": 60},
        content_type=JSON,
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "new" and body["pipeline"] == pipeline.pk and body["quality"] is None
    assert body["min_positives"] == 100 and body["min_negatives"] == 100
    url = f"/api/v1/predictions/models/{body['id']}/"
    assert marketing_client.get(url).json()["name"] == "Deals won"
    response = marketing_client.patch(url, {"horizon_days": 14}, content_type=JSON)
    assert response.status_code == 200 and response.json()["horizon_days"] == 14
    assert marketing_client.get("/api/v1/predictions/models/").json()["count"] == 1
    assert marketing_client.delete(url).status_code == 204
    assert marketing_client.get(url).status_code == 404


def test_an_event_goal_without_an_event_is_a_400_naming_the_field(marketing_client):
    response = marketing_client.post(
        "/api/v1/predictions/models/", {"name": "Orders", "goal": "event"}, content_type=JSON
    )
    assert response.status_code == 400
    assert "event_name" in str(response.json())
    response = marketing_client.post(
        "/api/v1/predictions/models/", {"name": "Orders", "horizon_days": 0}, content_type=JSON
    )
    assert response.status_code == 400 and "horizon_days" in str(response.json())


def test_a_rep_reads_models_and_predictions_but_changes_nothing(sales_client):
    model = trained_model()
    url = f"/api/v1/predictions/models/{model.pk}/"
    assert sales_client.get(url).status_code == 200
    assert sales_client.get("/api/v1/predictions/models/").status_code == 200
    assert sales_client.patch(url, {"name": "x"}, content_type=JSON).status_code == 403
    assert sales_client.delete(url).status_code == 403
    assert sales_client.post(url + "train/").status_code == 403
    assert (
        sales_client.post("/api/v1/predictions/models/", {"name": "x"}, content_type=JSON).status_code == 403
    )
    assert PredictionModel.objects.get(pk=model.pk).name == "Buyers"


def test_a_contacts_predictions_come_with_their_explanation(sales_client):
    model = trained_model()
    assert model.status == ModelStatus.PUBLISHED, model.status_reason
    top = Prediction.objects.filter(model=model).order_by("-probability").first()
    body = sales_client.get(f"/api/v1/predictions/contacts/{top.contact_id}/").json()
    assert len(body) == 1
    row = body[0]
    assert row["model"] == model.pk and row["algorithm"] == model.algorithm
    assert row["probability"] == pytest.approx(top.probability)
    assert 0 <= row["percentile"] <= 100
    assert row["explanation"] and {"feature", "label", "value", "contribution"} <= set(row["explanation"][0])
    # the model's page shows its quality
    quality = sales_client.get(f"/api/v1/predictions/models/{model.pk}/").json()["quality"]
    assert {"auc", "log_loss", "lift_top_decile", "positives", "negatives"} <= set(quality)
    assert sales_client.get("/api/v1/predictions/contacts/999999/").status_code == 404


def test_retraining_is_queued_for_marketing(marketing_client, django_capture_on_commit_callbacks):
    model = PredictionModel.objects.create(name="m")
    with django_capture_on_commit_callbacks() as callbacks:
        response = marketing_client.post(f"/api/v1/predictions/models/{model.pk}/train/")
    assert response.status_code == 202 and response.json() == {"queued": True}
    assert len(callbacks) == 1


def test_the_api_needs_a_login(client):
    assert client.get("/api/v1/predictions/models/").status_code in (401, 403)
