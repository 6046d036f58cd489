from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("settings/", views.settings_page, name="settings"),
    path("settings/tokens/", views.token_create, name="token_create"),
    path("settings/tokens/<int:pk>/revoke/", views.token_revoke, name="token_revoke"),
    path("settings/users/", views.user_create, name="user_create"),
    path("settings/users/<int:pk>/role/", views.user_set_role, name="user_set_role"),
]
