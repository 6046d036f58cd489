from django.urls import path

from accounts import notification_views, views

app_name = "accounts"

urlpatterns = [
    path("settings/", views.settings_page, name="settings"),
    path("settings/tokens/", views.token_create, name="token_create"),
    path("settings/tokens/<int:pk>/revoke/", views.token_revoke, name="token_revoke"),
    path("settings/users/", views.user_create, name="user_create"),
    path("settings/users/<int:pk>/role/", views.user_set_role, name="user_set_role"),
    path("settings/users/<int:pk>/active/", views.user_set_active, name="user_set_active"),
    path(
        "settings/notifications/",
        notification_views.notification_preferences,
        name="notification_preferences",
    ),
    path("notifications/", notification_views.notification_list, name="notifications"),
    path("notifications/bell/", notification_views.notification_bell, name="notification_bell"),
    path("notifications/<int:pk>/open/", notification_views.notification_open, name="notification_open"),
    path("notifications/<int:pk>/read/", notification_views.notification_read, name="notification_read"),
    path("notifications/read-all/", notification_views.notification_read_all, name="notification_read_all"),
]
