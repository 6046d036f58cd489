from django.urls import path

from traits import views

app_name = "traits"

urlpatterns = [
    path("settings/traits/", views.trait_list, name="list"),
    path("settings/traits/new/", views.trait_edit, name="create"),
    path("settings/traits/<int:pk>/", views.trait_edit, name="edit"),
    path("settings/traits/<int:pk>/delete/", views.trait_delete, name="delete"),
    path("settings/traits/<int:pk>/recompute/", views.trait_recompute, name="recompute"),
    path("traits/contact/<int:pk>/", views.contact_panel, name="contact_panel"),
    path("traits/company/<int:pk>/", views.company_panel, name="company_panel"),
]
