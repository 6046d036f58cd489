from django.urls import path  # noqa: F401 (each room below adds its paths)

urlpatterns: list = []
