"""The contacts UI. Two URL namespaces, kept from when they were two files: `contacts:` for the
records (contact and company lists, detail, forms) and `contacts_tools:` for the tools around them
(Settings → custom fields, CSV import, duplicate merge)."""

from django.urls import include, path

from contacts.views import custom_fields, duplicates, imports, records

record_patterns = [
    path("contacts/", records.contact_list, name="list"),
    path("contacts/export.csv", records.contact_export, name="contact_export"),
    path("contacts/new/", records.contact_create, name="contact_create"),
    path("contacts/quick-add/", records.contact_quick_add, name="contact_quick_add"),
    path("contacts/bulk/", records.contact_bulk, name="contact_bulk"),
    path("contacts/columns/", records.contact_columns, name="contact_columns"),
    path("contacts/views/", records.contact_saved_view_create, name="contact_saved_view_create"),
    path("contacts/<int:pk>/", records.contact_detail, name="contact_detail"),
    path("contacts/<int:pk>/edit/", records.contact_edit, name="contact_edit"),
    path("contacts/<int:pk>/delete/", records.contact_delete, name="contact_delete"),
    path("contacts/<int:pk>/history/", records.contact_history, name="contact_history"),
    path("contacts/<int:pk>/cell/<str:column>/", records.contact_cell, name="contact_cell"),
    path("companies/", records.company_list, name="company_list"),
    path("companies/export.csv", records.company_export, name="company_export"),
    path("companies/new/", records.company_create, name="company_create"),
    path("companies/quick-add/", records.company_quick_add, name="company_quick_add"),
    path("companies/bulk/", records.company_bulk, name="company_bulk"),
    path("companies/columns/", records.company_columns, name="company_columns"),
    path("companies/views/", records.company_saved_view_create, name="company_saved_view_create"),
    path("companies/options/", records.company_options, name="company_options"),
    path("companies/<int:pk>/", records.company_detail, name="company_detail"),
    path("companies/<int:pk>/edit/", records.company_edit, name="company_edit"),
    path("companies/<int:pk>/delete/", records.company_delete, name="company_delete"),
    path("companies/<int:pk>/history/", records.company_history, name="company_history"),
    path("companies/<int:pk>/cell/<str:column>/", records.company_cell, name="company_cell"),
    path("saved-views/<int:pk>/delete/", records.saved_view_delete, name="saved_view_delete"),
]

tool_patterns = [
    path("settings/custom-fields/", custom_fields.custom_field_list, name="custom_fields"),
    path("settings/custom-fields/<int:pk>/", custom_fields.custom_field_edit, name="custom_field_edit"),
    path(
        "settings/custom-fields/<int:pk>/delete/",
        custom_fields.custom_field_delete,
        name="custom_field_delete",
    ),
    path("contacts/import/", imports.import_upload, name="import_upload"),
    path("contacts/import/<int:pk>/", imports.import_mapping, name="import_mapping"),
    path("contacts/import/<int:pk>/preview/", imports.import_preview, name="import_preview"),
    path("contacts/import/<int:pk>/progress/", imports.import_progress, name="import_progress"),
    path("contacts/import/<int:pk>/rejected.csv", imports.import_errors_csv, name="import_errors"),
    path("contacts/duplicates/", duplicates.duplicate_list, name="duplicates"),
    path("contacts/duplicates/merge/", duplicates.contact_merge, name="merge"),
]

urlpatterns = [
    path("", include((record_patterns, "contacts"))),
    path("", include((tool_patterns, "contacts_tools"))),
]
