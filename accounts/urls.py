from django.urls import path

from accounts.views import notifications, users

app_name = "accounts"

urlpatterns = [
    path("settings/", users.settings_page, name="settings"),
    path("settings/tokens/", users.token_create, name="token_create"),
    path("settings/tokens/<int:pk>/revoke/", users.token_revoke, name="token_revoke"),
    path("settings/users/", users.user_create, name="user_create"),
    path("settings/users/<int:pk>/role/", users.user_set_role, name="user_set_role"),
    path("settings/users/<int:pk>/active/", users.user_set_active, name="user_set_active"),
    path(
        "settings/notifications/",
        notifications.notification_preferences,
        name="notification_preferences",
    ),
    path("notifications/", notifications.notification_list, name="notifications"),
    path("notifications/bell/", notifications.notification_bell, name="notification_bell"),
    path("notifications/<int:pk>/open/", notifications.notification_open, name="notification_open"),
    path("notifications/<int:pk>/read/", notifications.notification_read, name="notification_read"),
    path("notifications/read-all/", notifications.notification_read_all, name="notification_read_all"),
]
