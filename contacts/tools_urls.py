"""Settings → custom fields, CSV import and duplicate merge: tools around the contact records."""

from django.urls import path

from contacts import custom_field_views, duplicate_views, import_views

app_name = "contacts_tools"

urlpatterns = [
    path("settings/custom-fields/", custom_field_views.custom_field_list, name="custom_fields"),
    path("settings/custom-fields/<int:pk>/", custom_field_views.custom_field_edit, name="custom_field_edit"),
    path(
        "settings/custom-fields/<int:pk>/delete/",
        custom_field_views.custom_field_delete,
        name="custom_field_delete",
    ),
    path("contacts/import/", import_views.import_upload, name="import_upload"),
    path("contacts/import/<int:pk>/", import_views.import_mapping, name="import_mapping"),
    path("contacts/import/<int:pk>/preview/", import_views.import_preview, name="import_preview"),
    path("contacts/import/<int:pk>/progress/", import_views.import_progress, name="import_progress"),
    path("contacts/import/<int:pk>/rejected.csv", import_views.import_errors_csv, name="import_errors"),
    path("contacts/duplicates/", duplicate_views.duplicate_list, name="duplicates"),
    path("contacts/duplicates/merge/", duplicate_views.contact_merge, name="merge"),
]
