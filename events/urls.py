from django.urls import path

from cdp_crm.pages import not_built_yet
from events import debugger

app_name = "events"

urlpatterns = [
    path("events/", debugger.event_list, name="list"),
    path("events/rejected/", debugger.rejected_list, name="rejected"),
    path("events/dead/", debugger.dead_letter_list, name="dead_letters"),
    path("events/dead/<int:pk>/retry/", debugger.dead_letter_retry, name="dead_letter_retry"),
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
