from django.urls import path

from segments import views

app_name = "segments"

urlpatterns = [
    path("segments/", views.segment_list, name="list"),
    path("segments/new/", views.segment_edit, name="create"),
    path("segments/preview/", views.segment_preview, name="preview"),
    path("segments/contact-list-slot/", views.list_slot, name="list_slot"),
    path("segments/contact/<int:pk>/", views.contact_panel, name="contact_panel"),
    path("segments/<int:pk>/", views.segment_detail, name="detail"),
    path("segments/<int:pk>/edit/", views.segment_edit, name="edit"),
    path("segments/<int:pk>/delete/", views.segment_delete, name="delete"),
    path("segments/<int:pk>/recompute/", views.segment_recompute, name="recompute"),
    path("segments/<int:pk>/members/", views.segment_members, name="members"),
    path("segments/<int:pk>/members/change/", views.segment_members_change, name="members_change"),
    path("segments/<int:pk>/export.csv", views.segment_export, name="export"),
    path("segments/<int:pk>/webhooks/", views.webhook_add, name="webhook_add"),
    path("segments/webhooks/<int:pk>/delete/", views.webhook_delete, name="webhook_delete"),
    path("segments/webhooks/<int:pk>/test/", views.webhook_test, name="webhook_test"),
]
