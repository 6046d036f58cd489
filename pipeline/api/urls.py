from django.urls import path

from pipeline.api.activities import ActivityDetailApi, ActivityListApi, TaskDetailApi, TaskListApi
from pipeline.api.deals import (
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
    path("activities/", ActivityListApi.as_view(), name="api-activities"),
    path("activities/<int:pk>/", ActivityDetailApi.as_view(), name="api-activity-detail"),
    path("tasks/", TaskListApi.as_view(), name="api-tasks"),
    path("tasks/<int:pk>/", TaskDetailApi.as_view(), name="api-task-detail"),
]
