from django.urls import path

from privacy.api.erasure import ContactEraseApi, ContactExportApi, ErasureDetailApi

urlpatterns = [
    path("contacts/<int:pk>/erase/", ContactEraseApi.as_view(), name="api-contact-erase"),
    path("contacts/<int:pk>/export/", ContactExportApi.as_view(), name="api-contact-export"),
    path("privacy/erasures/<int:pk>/", ErasureDetailApi.as_view(), name="api-erasure-detail"),
]
