"""Writes of the predictions app. Other apps call these (segments' realtime drain calls
`predictions_score_contacts`)."""

from .models import (
    prediction_model_create,
    prediction_model_delete,
    prediction_model_train_request,
    prediction_model_update,
)
from .scoring import predictions_realtime_queue, predictions_score, predictions_score_contacts
from .training import prediction_model_train

__all__ = [
    "prediction_model_create",
    "prediction_model_delete",
    "prediction_model_train",
    "prediction_model_train_request",
    "prediction_model_update",
    "predictions_realtime_queue",
    "predictions_score",
    "predictions_score_contacts",
]
