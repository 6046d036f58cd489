from django.urls import path

from contacts.api.views import CompanyDetailApi, CompanyListApi, ContactDetailApi, ContactListApi

urlpatterns = [
    path("contacts/", ContactListApi.as_view(), name="api-contacts"),
    path("contacts/<int:pk>/", ContactDetailApi.as_view(), name="api-contact-detail"),
    path("companies/", CompanyListApi.as_view(), name="api-companies"),
    path("companies/<int:pk>/", CompanyDetailApi.as_view(), name="api-company-detail"),
]
