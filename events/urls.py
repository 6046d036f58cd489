from django.urls import path

from events.views import debugger, sources

app_name = "events"

urlpatterns = [
    path("events/", debugger.event_list, name="list"),
    path("events/rejected/", debugger.rejected_list, name="rejected"),
    path("events/dead/", debugger.dead_letter_list, name="dead_letters"),
    path("events/dead/<int:pk>/retry/", debugger.dead_letter_retry, name="dead_letter_retry"),
    path("sources/", sources.source_list, name="sources"),
    path("sources/new/", sources.source_create, name="source_create"),
    path("sources/<int:pk>/", sources.source_detail, name="source_detail"),
    path("sources/<int:pk>/edit/", sources.source_edit, name="source_edit"),
    path("sources/<int:pk>/rotate-key/", sources.source_rotate_key, name="source_rotate_key"),
    path("sources/<int:pk>/status/", sources.source_status, name="source_status"),
    # Public, loaded by tracked sites: the library and Segment's settings document.
    path("js/cdp.js", sources.cdp_js, name="cdp_js"),
    path("v1/projects/<str:write_key>/settings", sources.segment_settings, name="segment_settings"),
]
