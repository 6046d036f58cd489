from django.urls import path

from scoring.api.views import ContactScoresApi, ScoreModelDetailApi, ScoreModelListApi

urlpatterns = [
    path("score-models/", ScoreModelListApi.as_view(), name="api-score-models"),
    path("score-models/<int:pk>/", ScoreModelDetailApi.as_view(), name="api-score-model-detail"),
    path("contacts/<int:pk>/scores/", ContactScoresApi.as_view(), name="api-contact-scores"),
]
