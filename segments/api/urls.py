from django.urls import path

from segments.api.views import (
    SegmentDeliveryListApi,
    SegmentDetailApi,
    SegmentListApi,
    SegmentMembersApi,
    SegmentPreviewApi,
    SegmentWebhookDetailApi,
    SegmentWebhookListApi,
)

urlpatterns = [
    path("segments/", SegmentListApi.as_view(), name="api-segments"),
    path("segments/preview/", SegmentPreviewApi.as_view(), name="api-segment-preview"),
    path("segments/<int:pk>/", SegmentDetailApi.as_view(), name="api-segment-detail"),
    path("segments/<int:pk>/members/", SegmentMembersApi.as_view(), name="api-segment-members"),
    path("segments/<int:pk>/webhooks/", SegmentWebhookListApi.as_view(), name="api-segment-webhooks"),
    path("segments/<int:pk>/deliveries/", SegmentDeliveryListApi.as_view(), name="api-segment-deliveries"),
    path("segments/webhooks/<int:pk>/", SegmentWebhookDetailApi.as_view(), name="api-segment-webhook-detail"),
]
