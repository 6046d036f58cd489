import time

import pytest
from django.utils import timezone

from identity.models import ActivityKind, DailyActivity
from predictions import services
from predictions.models import Goal, ModelStatus, Prediction, PredictionModel
from predictions.tasks import predictions_retrain_due
from privacy import services as privacy
from segments import services as segment_services
from tests.factories import make_user, profile_update

from .helpers import GOAL, history, trained_model

WAIT = 120  # seconds: training 60 people takes a few seconds, a loaded box more


def _until(condition, *, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.2)


@pytest.mark.django_db(transaction=True)
def test_training_on_demand_runs_in_the_worker_and_publishes_scores(celery_worker):
    # given a workspace history and a model a marketer asked to train
    ids = history(people=60, seed=3)
    marketer = make_user(role="Marketing", username="mkt-worker")
    model = services.prediction_model_create(
        actor=marketer, name="Buyers", goal=Goal.EVENT, event_name=GOAL, min_positives=5, min_negatives=5
    )
    services.prediction_model_train_request(actor=marketer, model=model)
    # when the worker has trained it, every contact has a published score
    _until(
        lambda: PredictionModel.objects.get(pk=model.pk).status in (ModelStatus.PUBLISHED, ModelStatus.FAILED)
    )
    model.refresh_from_db()
    assert model.status == ModelStatus.PUBLISHED, model.status_reason
    _until(lambda: Prediction.objects.filter(model=model).count() == len(ids))
    # and the realtime path rescores a contact whose profile changed
    low = Prediction.objects.filter(model=model).order_by("probability", "contact_id").first()
    before = low.scored_at
    today = timezone.now().date()
    DailyActivity.objects.create(
        contact_id=low.contact_id, day=today, kind=ActivityKind.PAGE, key="/pricing", count=6
    )
    profile_update(low.contact)
    segment_services.profile_updates_process()
    _until(lambda: Prediction.objects.get(pk=low.pk).scored_at > before)
    assert Prediction.objects.get(pk=low.pk).probability != low.probability


@pytest.mark.django_db(transaction=True)
def test_the_weekly_tick_queues_models_due(celery_worker):
    history(people=60, seed=4)
    model = PredictionModel.objects.create(
        name="Due", goal=Goal.EVENT, event_name=GOAL, min_positives=5, min_negatives=5
    )
    predictions_retrain_due.delay()
    _until(lambda: PredictionModel.objects.get(pk=model.pk).status == ModelStatus.PUBLISHED)


@pytest.mark.django_db
def test_erasure_removes_the_persons_predictions(admin_user):
    model = trained_model()
    person = Prediction.objects.filter(model=model).order_by("-probability").first().contact
    request = privacy.person_erase_request(actor=admin_user, contact=person)
    privacy.person_erase(request_id=request.pk)
    assert not Prediction.objects.filter(contact_id=person.pk).exists()
    assert Prediction.objects.filter(model=model).exists()  # everyone else keeps theirs
