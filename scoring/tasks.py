"""Thin Celery tasks: ids in, services do the work, deleted rows are ignored."""

from celery import shared_task
from django.db import OperationalError


@shared_task(ignore_result=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=8)
def score_model_recompute(model_id: int) -> None:
    """Full recompute of one model (queued on its save); a deleted model is ignored."""
    from scoring import services

    services.score_model_recompute(model_id=model_id)


@shared_task(ignore_result=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def scores_decay_refresh() -> None:
    """Beat, hourly: models whose decay or time frames moved scores since the last UTC day."""
    from scoring import services

    services.scores_decay_refresh()
