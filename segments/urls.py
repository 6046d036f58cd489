from django.urls import path

from cdp_crm.pages import not_built_yet

app_name = "segments"

urlpatterns = [
    path(
        "segments/",
        not_built_yet,
        {
            "title": "Segments",
            "issue": 7,
            "summary": "Build audiences from contact fields, traits, deals and behaviour with live "
            "counts; keep them fresh in real time and push entries and exits by webhook.",
        },
        name="list",
    ),
]
