from django.urls import path

from events.sources_api import SourceListApi, SourcePrivacyApi

urlpatterns = [
    path("sources/", SourceListApi.as_view(), name="api-sources"),
    path("sources/<int:pk>/privacy/", SourcePrivacyApi.as_view(), name="api-source-privacy"),
]
