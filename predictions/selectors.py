"""Reads of the predictions app."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from contacts.models import Contact
from core.errors import NotFound

from . import permissions
from .models import ModelStatus, Prediction, PredictionModel


def prediction_model_list(*, user: AbstractBaseUser | None) -> QuerySet[PredictionModel]:
    permissions.ensure_can_read(user)
    return PredictionModel.objects.select_related("pipeline").defer("artifact").order_by("name", "pk")


def prediction_model_get(*, user: AbstractBaseUser | None, model_id: int) -> PredictionModel:
    permissions.ensure_can_read(user)
    model = PredictionModel.objects.select_related("pipeline").defer("artifact").filter(pk=model_id).first()
    if model is None:
        raise NotFound(f"Prediction model {model_id} does not exist.")
    return model


def contact_predictions(*, user: AbstractBaseUser | None, contact: Contact) -> list[Prediction]:
    """The contact's predictions under published models, most likely first."""
    permissions.ensure_can_read(user)
    return list(
        Prediction.objects.filter(contact=contact, model__status=ModelStatus.PUBLISHED)
        .select_related("model")
        .defer("model__artifact")
        .order_by("-probability", "model_id")
    )


def top_predictions(
    *, user: AbstractBaseUser | None, model: PredictionModel, limit: int = 20
) -> list[Prediction]:
    permissions.ensure_can_read(user)
    return list(
        Prediction.objects.filter(model=model)
        .select_related("contact")
        .order_by("-probability", "contact_id")[:limit]
    )
