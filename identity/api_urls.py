from django.urls import path

from identity.api import ContactEventListApi, ContactIdentityListApi

urlpatterns = [
    # --- a person's events and identifiers
    path("contacts/<int:pk>/events/", ContactEventListApi.as_view(), name="api-contact-events"),
    path("contacts/<int:pk>/identities/", ContactIdentityListApi.as_view(), name="api-contact-identities"),
]
