from django.urls import path

from cdp_crm.pages import not_built_yet

app_name = "contacts"

urlpatterns = [
    path(
        "contacts/",
        not_built_yet,
        {
            "title": "Contacts",
            "issue": 3,
            "summary": "Searchable, filterable contact lists with saved views, bulk edit, CSV import "
            "and export, duplicate merge and a detail page with the full timeline.",
        },
        name="list",
    ),
    path(
        "companies/",
        not_built_yet,
        {
            "title": "Companies",
            "issue": 3,
            "summary": "Company records linked to their contacts by email domain, with owners, "
            "custom fields and their deals.",
        },
        name="company_list",
    ),
]
