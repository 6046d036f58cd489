from django.urls import path

from cdp_crm.pages import not_built_yet

app_name = "events"

urlpatterns = [
    path(
        "events/",
        not_built_yet,
        {
            "title": "Events",
            "issue": 5,
            "summary": "A live debugger of incoming page, identify and track events per source, "
            "with rejected events and their reasons.",
        },
        name="list",
    ),
    path(
        "sources/",
        not_built_yet,
        {
            "title": "Sources",
            "issue": 5,
            "summary": "Write keys for websites, servers and apps, with the tracking snippet to paste "
            "and a test-event indicator.",
        },
        name="sources",
    ),
]
