from django.urls import path

from pipeline import activity_views, report_views

app_name = "activities"

urlpatterns = [
    # The activity panel each record page lazy-loads, and the posts it makes (per scope, so the
    # URL names the record the activity or task is logged on).
    *[
        route
        for scope, prefix in (("contact", "contacts"), ("company", "companies"), ("deal", "deals"))
        for route in (
            path(
                f"{prefix}/<int:pk>/activities/",
                activity_views.record_activities,
                {"scope": scope},
                name=scope,
            ),
            path(
                f"{prefix}/<int:pk>/activities/log/",
                activity_views.activity_create,
                {"scope": scope},
                name=f"{scope}_log",
            ),
            path(
                f"{prefix}/<int:pk>/tasks/new/",
                activity_views.task_create,
                {"scope": scope},
                name=f"{scope}_task",
            ),
        )
    ],
    path("activities/<int:pk>/", activity_views.activity_item, name="item"),
    path("activities/<int:pk>/edit/", activity_views.activity_edit, name="edit"),
    path("activities/<int:pk>/delete/", activity_views.activity_delete, name="delete"),
    path("tasks/<int:pk>/toggle/", activity_views.task_toggle, name="task_toggle"),
    path("tasks/<int:pk>/edit/", activity_views.task_edit, name="task_edit"),
    path("tasks/new/", activity_views.my_day_task_create, name="my_day_task"),
    path("tasks/deal-options/", activity_views.deal_options, name="deal_options"),
    path("reports/", report_views.reports, name="reports"),
]
