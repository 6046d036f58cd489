from django.urls import re_path

from events.ingest.endpoint import PATH_PATTERN, track_api

urlpatterns = [re_path(PATH_PATTERN, track_api, name="track-api")]
