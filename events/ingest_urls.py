from django.urls import re_path

from events.api import track_api

urlpatterns = [
    re_path(
        r"^v1/(?P<kind>identify|track|page|screen|group|alias|batch|import|[tipsgab])/?$",
        track_api,
        name="track-api",
    ),
]
