from django.urls import path

from identity import merge_views

app_name = "identity"

urlpatterns = [
    # --- merge log (identity core)
    path("identity/merges/", merge_views.merge_list, name="merge_list"),
    path("identity/merges/<int:pk>/", merge_views.merge_detail, name="merge_detail"),
    path("identity/merges/<int:pk>/split/", merge_views.merge_split, name="merge_split"),
    # --- end of merge log
]
