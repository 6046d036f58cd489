from django.urls import path

from contacts import views

app_name = "contacts"

urlpatterns = [
    path("contacts/", views.contact_list, name="list"),
    path("contacts/export.csv", views.contact_export, name="contact_export"),
    path("contacts/new/", views.contact_create, name="contact_create"),
    path("contacts/quick-add/", views.contact_quick_add, name="contact_quick_add"),
    path("contacts/bulk/", views.contact_bulk, name="contact_bulk"),
    path("contacts/columns/", views.contact_columns, name="contact_columns"),
    path("contacts/views/", views.contact_saved_view_create, name="contact_saved_view_create"),
    path("contacts/<int:pk>/", views.contact_detail, name="contact_detail"),
    path("contacts/<int:pk>/edit/", views.contact_edit, name="contact_edit"),
    path("contacts/<int:pk>/delete/", views.contact_delete, name="contact_delete"),
    path("contacts/<int:pk>/history/", views.contact_history, name="contact_history"),
    path("contacts/<int:pk>/cell/<str:column>/", views.contact_cell, name="contact_cell"),
    path("companies/", views.company_list, name="company_list"),
    path("companies/export.csv", views.company_export, name="company_export"),
    path("companies/new/", views.company_create, name="company_create"),
    path("companies/quick-add/", views.company_quick_add, name="company_quick_add"),
    path("companies/bulk/", views.company_bulk, name="company_bulk"),
    path("companies/columns/", views.company_columns, name="company_columns"),
    path("companies/views/", views.company_saved_view_create, name="company_saved_view_create"),
    path("companies/options/", views.company_options, name="company_options"),
    path("companies/<int:pk>/", views.company_detail, name="company_detail"),
    path("companies/<int:pk>/edit/", views.company_edit, name="company_edit"),
    path("companies/<int:pk>/delete/", views.company_delete, name="company_delete"),
    path("companies/<int:pk>/history/", views.company_history, name="company_history"),
    path("companies/<int:pk>/cell/<str:column>/", views.company_cell, name="company_cell"),
    path("saved-views/<int:pk>/delete/", views.saved_view_delete, name="saved_view_delete"),
]
