from django.urls import include, path

from cdp_crm.api_root import ApiRootApi

urlpatterns = [
    path("", ApiRootApi.as_view(), name="api-root"),
    path("", include("accounts.api.urls")),
    path("", include("contacts.api.urls")),
    path("", include("pipeline.api.urls")),
    path("", include("events.api.urls")),
    path("", include("identity.api.urls")),
    path("", include("mail.api.urls")),
    path("", include("segments.api.urls")),
    path("", include("scoring.api.urls")),
    path("", include("predictions.api.urls")),
    path("", include("traits.api.urls")),
    path("", include("privacy.api.urls")),
]
