from django.urls import path

from mail.api.views import (
    CompanyEmailListApi,
    ContactEmailListApi,
    DealEmailListApi,
    EmailDetailApi,
    EmailSendApi,
    EmailTemplateDetailApi,
    EmailTemplateListApi,
)

urlpatterns: list = [
    # a record's email, newest first (what its timeline shows)
    path("contacts/<int:pk>/emails/", ContactEmailListApi.as_view(), name="api-contact-emails"),
    path("companies/<int:pk>/emails/", CompanyEmailListApi.as_view(), name="api-company-emails"),
    path("deals/<int:pk>/emails/", DealEmailListApi.as_view(), name="api-deal-emails"),
    # one message, and sending one
    path("emails/send/", EmailSendApi.as_view(), name="api-email-send"),
    path("emails/<int:pk>/", EmailDetailApi.as_view(), name="api-email-detail"),
    path("email-templates/", EmailTemplateListApi.as_view(), name="api-email-templates"),
    path("email-templates/<int:pk>/", EmailTemplateDetailApi.as_view(), name="api-email-template-detail"),
]
