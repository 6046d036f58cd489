from django.urls import path

from privacy import views

app_name = "privacy"

urlpatterns = [
    path("privacy/contact/<int:pk>/actions/", views.contact_actions, name="contact_actions"),
    path("privacy/contact/<int:pk>/export/", views.contact_export, name="contact_export"),
    path("privacy/contact/<int:pk>/erase/", views.contact_erase, name="contact_erase"),
    path("settings/erasures/", views.erasure_list, name="erasure_list"),
    path("settings/erasures/<int:pk>/", views.erasure_detail, name="erasure_detail"),
    path("settings/erasures/<int:pk>/retry/", views.erasure_retry, name="erasure_retry"),
]
