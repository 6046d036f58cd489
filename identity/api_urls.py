from django.urls import path

from identity.merge_api import MergeDetailApi, MergeListApi, MergeSplitApi

urlpatterns = [
    # --- merge log (identity core)
    path("identity/merges/", MergeListApi.as_view(), name="api-identity-merges"),
    path("identity/merges/<int:pk>/", MergeDetailApi.as_view(), name="api-identity-merge-detail"),
    path("identity/merges/<int:pk>/split/", MergeSplitApi.as_view(), name="api-identity-merge-split"),
]
