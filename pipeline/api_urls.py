from django.urls import path

from pipeline.api import DealDetailApi, DealListApi, PipelineListApi

urlpatterns = [
    path("pipelines/", PipelineListApi.as_view(), name="api-pipelines"),
    path("deals/", DealListApi.as_view(), name="api-deals"),
    path("deals/<int:pk>/", DealDetailApi.as_view(), name="api-deal-detail"),
]
