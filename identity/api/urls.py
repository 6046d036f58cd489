from django.urls import path

from identity.api.api import ContactEventListApi, ContactIdentityListApi
from identity.api.merges import MergeDetailApi, MergeListApi, MergeSplitApi

urlpatterns = [
    # --- a person's events and identifiers
    path("contacts/<int:pk>/events/", ContactEventListApi.as_view(), name="api-contact-events"),
    path("contacts/<int:pk>/identities/", ContactIdentityListApi.as_view(), name="api-contact-identities"),
    # --- merge log (identity core)
    path("identity/merges/", MergeListApi.as_view(), name="api-identity-merges"),
    path("identity/merges/<int:pk>/", MergeDetailApi.as_view(), name="api-identity-merge-detail"),
    path("identity/merges/<int:pk>/split/", MergeSplitApi.as_view(), name="api-identity-merge-split"),
]
