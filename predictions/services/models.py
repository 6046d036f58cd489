"""Creating, changing and deleting predictive models, and asking for a training run."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from core.errors import DomainError

from .. import permissions
from ..models import Goal, ModelStatus, Prediction, PredictionModel
from ..tasks import prediction_model_train as prediction_model_train_task

EDITABLE = ("name", "goal", "event_name", "pipeline", "horizon_days", "min_positives", "min_negatives")
# What changes the meaning of the scores: published ones are withdrawn until the model retrains.
RETRAIN_ON = {"goal", "event_name", "pipeline", "horizon_days", "min_positives", "min_negatives"}


def _check(fields: dict) -> None:
    errors = {}
    if fields.get("goal") == Goal.EVENT and not (fields.get("event_name") or "").strip():
        errors["event_name"] = ["Name the track event to predict (for example “Order Completed”)."]
    horizon = fields.get("horizon_days")
    if horizon is not None and not 1 <= horizon <= 365:
        errors["horizon_days"] = ["Between 1 and 365 days."]
    if not (fields.get("name") or "").strip():
        errors["name"] = ["A model needs a name."]
    if errors:
        raise DomainError("The model is not valid.", fields=errors)


def prediction_model_create(*, actor: AbstractBaseUser | None, **fields) -> PredictionModel:
    permissions.ensure_can_manage(actor)
    fields = {k: v for k, v in fields.items() if k in EDITABLE}
    if fields.get("goal", Goal.DEAL_WON) == Goal.DEAL_WON:
        fields["event_name"] = ""
    _check({"goal": Goal.DEAL_WON, **fields})
    return PredictionModel.objects.create(created_by=actor if getattr(actor, "pk", None) else None, **fields)


@transaction.atomic
def prediction_model_update(
    *, actor: AbstractBaseUser | None, model: PredictionModel, **fields
) -> PredictionModel:
    permissions.ensure_can_manage(actor)
    model = PredictionModel.objects.select_for_update().get(pk=model.pk)
    merged = {k: getattr(model, k) for k in EDITABLE} | {k: v for k, v in fields.items() if k in EDITABLE}
    if merged["goal"] == Goal.DEAL_WON:
        merged["event_name"] = ""
    _check(merged)
    changed = {k for k, v in merged.items() if getattr(model, k) != v}
    for key, value in merged.items():
        setattr(model, key, value)
    if RETRAIN_ON & changed:
        Prediction.objects.filter(model=model).delete()
        model.status, model.status_reason, model.verdict = ModelStatus.NEW, "Changed: train it again.", ""
        model.artifact, model.artifact_hmac, model.quantiles = None, "", []
        model.scored_at, model.scored_count = None, 0
    model.save()
    return model


def prediction_model_delete(*, actor: AbstractBaseUser | None, model: PredictionModel) -> None:
    permissions.ensure_can_manage(actor)
    model.delete()


def prediction_model_train_request(*, actor: AbstractBaseUser | None, model: PredictionModel) -> None:
    """Queue a training run (the worker claims it, so a second request while one runs is a no-op)."""
    permissions.ensure_can_manage(actor)
    transaction.on_commit(lambda: prediction_model_train_task.delay(model.pk))
