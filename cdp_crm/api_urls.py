from django.urls import include, path

from cdp_crm.api_root import ApiRootApi

urlpatterns = [
    path("", ApiRootApi.as_view(), name="api-root"),
    path("", include("accounts.api.urls")),
    path("", include("contacts.api_urls")),
    path("", include("pipeline.api.urls")),
    path("", include("events.api_urls")),
    path("", include("identity.api_urls")),
    path("", include("segments.api_urls")),
    path("", include("privacy.api_urls")),
]
