"""Training and scoring run in the worker (default queue). Tasks take ids and tolerate deleted rows."""

import datetime as dt

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from .models import ModelStatus, PredictionModel

# Weekly retraining, as Segment's Predictions refresh.
RETRAIN_EVERY = dt.timedelta(days=7)


@shared_task(ignore_result=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def prediction_model_train(model_id: int) -> None:
    from .services import training

    model = training.training_claim(model_id=model_id)
    if model is None:  # deleted, or a live run has it
        return
    try:
        training.prediction_model_train(model=model)
    except Exception as exc:
        PredictionModel.objects.filter(pk=model_id).update(
            status=ModelStatus.FAILED, status_reason=f"Training failed: {type(exc).__name__}: {exc}"[:2000]
        )
        raise


@shared_task(ignore_result=True)
def predictions_retrain_due() -> None:
    """Beat (hourly): queue every model last trained a week ago or more (or never trained)."""
    due = PredictionModel.objects.exclude(status=ModelStatus.TRAINING).filter(
        trained_at__lt=timezone.now() - RETRAIN_EVERY
    ) | PredictionModel.objects.filter(status=ModelStatus.NEW, trained_at=None)
    for pk in due.values_list("pk", flat=True).distinct():
        prediction_model_train.delay(pk)


@shared_task(ignore_result=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def predictions_score_all() -> None:
    """Beat (hourly): rescore every contact under every published model."""
    from .services import scoring

    for model in PredictionModel.objects.filter(status=ModelStatus.PUBLISHED):
        scoring.predictions_score(model=model)


@shared_task(ignore_result=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=3)
def predictions_score_contacts(contact_ids: list[int]) -> None:
    """The realtime path: contacts whose profile changed (segments' drain queues this)."""
    from .services import scoring

    scoring.predictions_score_contacts(contact_ids=contact_ids)
