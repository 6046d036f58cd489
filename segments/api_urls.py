from django.urls import path

from segments.api import SegmentDetailApi, SegmentListApi, SegmentMembersApi, SegmentPreviewApi

urlpatterns = [
    path("segments/", SegmentListApi.as_view(), name="api-segments"),
    path("segments/preview/", SegmentPreviewApi.as_view(), name="api-segment-preview"),
    path("segments/<int:pk>/", SegmentDetailApi.as_view(), name="api-segment-detail"),
    path("segments/<int:pk>/members/", SegmentMembersApi.as_view(), name="api-segment-members"),
]
