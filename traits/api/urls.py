from django.urls import path

from traits.api.views import CompanyTraitValuesApi, ContactTraitValuesApi, TraitDetailApi, TraitListApi

urlpatterns = [
    path("traits/", TraitListApi.as_view(), name="api-traits"),
    path("traits/<int:pk>/", TraitDetailApi.as_view(), name="api-trait-detail"),
    path("contacts/<int:pk>/traits/", ContactTraitValuesApi.as_view(), name="api-contact-traits"),
    path("companies/<int:pk>/traits/", CompanyTraitValuesApi.as_view(), name="api-company-traits"),
]
