from django.urls import path

from identity.views import merges, views

app_name = "identity"

urlpatterns = [
    # --- CRM views: slots on the contact page and deal cards, warnings, settings
    path("contacts/<int:pk>/web-activity/", views.web_activity, name="web_activity"),
    path("contacts/<int:pk>/web-activity/sessions/", views.web_sessions, name="web_sessions"),
    path("contacts/<int:pk>/web-activity/events/", views.web_events, name="web_events"),
    path("contacts/<int:pk>/timeline/", views.contact_timeline, name="timeline"),
    path("deals/signals/", views.deal_signals, name="deal_signals"),
    path("identity/warnings/", views.warning_list, name="warnings"),
    path("settings/identity/", views.identity_settings, name="settings"),
    path("settings/identity/hot-rules/", views.hot_rule_create, name="hot_rule_create"),
    path("settings/identity/hot-rules/<int:pk>/", views.hot_rule_update, name="hot_rule_update"),
    path("settings/identity/hot-rules/<int:pk>/delete/", views.hot_rule_delete, name="hot_rule_delete"),
    path("settings/identity/blocked-values/", views.blocked_value_add, name="blocked_value_add"),
    path(
        "settings/identity/blocked-values/<int:pk>/delete/",
        views.blocked_value_remove,
        name="blocked_value_remove",
    ),
    # --- merge log (identity core)
    path("identity/merges/", merges.merge_list, name="merge_list"),
    path("identity/merges/<int:pk>/", merges.merge_detail, name="merge_detail"),
    path("identity/merges/<int:pk>/split/", merges.merge_split, name="merge_split"),
    # --- end of merge log
]
