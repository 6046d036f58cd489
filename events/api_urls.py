from django.urls import path

from events.sources_api import SourceListApi

urlpatterns = [
    path("sources/", SourceListApi.as_view(), name="api-sources"),
]
