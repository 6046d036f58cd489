from django.urls import path

from cdp_crm.pages import not_built_yet
from pipeline import activity_views, views

app_name = "pipeline"

urlpatterns = [
    path("pipeline/contacts/<int:pk>/deals/", views.contact_deals, name="contact_deals"),
    path("pipeline/companies/<int:pk>/deals/", views.company_deals, name="company_deals"),
    path(
        "pipeline/",
        not_built_yet,
        {
            "title": "Pipeline",
            "issue": 4,
            "summary": "A drag-and-drop deal board per pipeline with stage totals, weighted value, "
            "next-activity badges, rotting markers and won/lost handling.",
        },
        name="board",
    ),
    path("tasks/", activity_views.my_day, name="tasks"),
]
