from django.urls import path  # noqa: F401 (each room below adds its paths)

app_name = "mail"

# Settings → Email (mailboxes, sync health, never-log list), the Unmatched inbox, templates,
# compose, message and attachment views. The public tracking paths (open pixel, click redirect)
# are in `tracking_urlpatterns`, included before the login-only pages (cdp_crm/urls.py).
urlpatterns: list = []

tracking_urlpatterns: list = []
