from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from cdp_crm import views
from mail import urls as mail_urls
from pipeline import urls as pipeline_urls

urlpatterns = [
    # The public tracking API (write keys, no login, no CSRF): Segment-compatible paths. First in
    # the list: it is the hot path, and resolving it after every other pattern cost ~0.2 ms CPU
    # per request (measured with cProfile: 73 pattern matches per /v1/track).
    path("", include("events.ingest.urls")),
    # Email open pixels and click redirects: public (the recipient's mail client), no CSRF.
    path("", include((mail_urls.tracking_urlpatterns, "mail_tracking"))),
    path("", include("workspace.urls")),
    path("healthz", views.healthz, name="healthz"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("", include("accounts.urls")),
    path("", include("contacts.urls")),
    path("", include("pipeline.urls")),
    path("", include((pipeline_urls.activity_urlpatterns, "activities"))),
    path("", include("events.urls")),
    path("", include("identity.urls")),
    path("", include("mail.urls")),
    path("", include("segments.urls")),
    path("", include("scoring.urls")),
    path("", include("predictions.urls")),
    path("", include("traits.urls")),
    path("", include("privacy.urls")),
    path("api/v1/", include("cdp_crm.api_urls")),
    # The schema is an API resource (token or session auth, 401 otherwise); the docs are a page
    # behind the login like every other (DRF marks its views login_not_required).
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its start-up script as a file: the Content-Security-Policy allows no
    # inline script.
    path(
        "api/docs/",
        login_required(SpectacularSwaggerSplitView.as_view(url_name="api-schema")),
        name="api-docs",
    ),
]

handler404 = "cdp_crm.views.page_not_found"

if settings.BENCH_URLS:
    urlpatterns.append(path("bench/ok", views.bench_ok, name="bench-ok"))
