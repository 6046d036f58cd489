from django.urls import path

from predictions.api.views import (
    ContactPredictionsApi,
    PredictionModelDetailApi,
    PredictionModelListApi,
    PredictionModelTrainApi,
)

urlpatterns = [
    path("predictions/models/", PredictionModelListApi.as_view(), name="api-prediction-models"),
    path(
        "predictions/models/<int:pk>/", PredictionModelDetailApi.as_view(), name="api-prediction-model-detail"
    ),
    path(
        "predictions/models/<int:pk>/train/",
        PredictionModelTrainApi.as_view(),
        name="api-prediction-model-train",
    ),
    path("predictions/contacts/<int:pk>/", ContactPredictionsApi.as_view(), name="api-contact-predictions"),
]
