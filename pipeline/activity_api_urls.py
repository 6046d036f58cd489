from django.urls import path

from pipeline.activity_api import ActivityDetailApi, ActivityListApi, TaskDetailApi, TaskListApi

urlpatterns = [
    path("activities/", ActivityListApi.as_view(), name="api-activities"),
    path("activities/<int:pk>/", ActivityDetailApi.as_view(), name="api-activity-detail"),
    path("tasks/", TaskListApi.as_view(), name="api-tasks"),
    path("tasks/<int:pk>/", TaskDetailApi.as_view(), name="api-task-detail"),
]
