from django.urls import path

from events.api.sources import SourceListApi, SourcePrivacyApi

urlpatterns = [
    path("sources/", SourceListApi.as_view(), name="api-sources"),
    path("sources/<int:pk>/privacy/", SourcePrivacyApi.as_view(), name="api-source-privacy"),
]
