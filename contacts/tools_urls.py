"""Settings → custom fields, CSV import and duplicate merge: tools around the contact records."""

from django.urls import path

from contacts import custom_field_views

app_name = "contacts_tools"

urlpatterns = [
    path("settings/custom-fields/", custom_field_views.custom_field_list, name="custom_fields"),
    path("settings/custom-fields/<int:pk>/", custom_field_views.custom_field_edit, name="custom_field_edit"),
    path(
        "settings/custom-fields/<int:pk>/delete/",
        custom_field_views.custom_field_delete,
        name="custom_field_delete",
    ),
]
