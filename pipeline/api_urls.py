from django.urls import path

from pipeline.api import (
    DealDetailApi,
    DealListApi,
    PipelineDetailApi,
    PipelineListApi,
    PipelineStageListApi,
    PipelineStageOrderApi,
    StageDetailApi,
)

urlpatterns = [
    path("pipelines/", PipelineListApi.as_view(), name="api-pipelines"),
    path("pipelines/<int:pk>/", PipelineDetailApi.as_view(), name="api-pipeline-detail"),
    path("pipelines/<int:pk>/stages/", PipelineStageListApi.as_view(), name="api-pipeline-stages"),
    path("pipelines/<int:pk>/stage-order/", PipelineStageOrderApi.as_view(), name="api-pipeline-stage-order"),
    path("stages/<int:pk>/", StageDetailApi.as_view(), name="api-stage-detail"),
    path("deals/", DealListApi.as_view(), name="api-deals"),
    path("deals/<int:pk>/", DealDetailApi.as_view(), name="api-deal-detail"),
]
