from django.urls import path

from scoring import views

app_name = "scoring"

urlpatterns = [
    path("settings/scoring/", views.model_list, name="list"),
    path("settings/scoring/new/", views.model_edit, name="create"),
    path("settings/scoring/<int:pk>/", views.model_edit, name="edit"),
    path("settings/scoring/<int:pk>/delete/", views.model_delete, name="delete"),
    path("scoring/contact/<int:pk>/", views.contact_panel, name="contact_panel"),
]
