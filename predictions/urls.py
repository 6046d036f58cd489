from django.urls import path

from predictions import views

app_name = "predictions"

urlpatterns = [
    path("settings/predictions/", views.model_list, name="list"),
    path("settings/predictions/new/", views.model_edit, name="create"),
    path("settings/predictions/<int:pk>/", views.model_detail, name="detail"),
    path("settings/predictions/<int:pk>/edit/", views.model_edit, name="edit"),
    path("settings/predictions/<int:pk>/train/", views.model_train, name="train"),
    path("settings/predictions/<int:pk>/delete/", views.model_delete, name="delete"),
    path("predictions/contact/<int:pk>/", views.contact_panel, name="contact_panel"),
]
