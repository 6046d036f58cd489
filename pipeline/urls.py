from django.urls import path

from pipeline.views import activities, deals, reports

app_name = "pipeline"

urlpatterns = [
    path("pipeline/contacts/<int:pk>/deals/", deals.contact_deals, name="contact_deals"),
    path("pipeline/companies/<int:pk>/deals/", deals.company_deals, name="company_deals"),
    path("pipeline/", deals.board, name="board"),
    path("pipeline/stages/<int:pk>/cards/", deals.board_column, name="board_column"),
    path("pipeline/contact-options/", deals.contact_options, name="contact_options"),
    path("deals/new/", deals.deal_create, name="deal_create"),
    path("deals/<int:pk>/", deals.deal_detail, name="deal_detail"),
    path("deals/<int:pk>/edit/", deals.deal_edit, name="deal_edit"),
    path("deals/<int:pk>/move/", deals.deal_move, name="deal_move"),
    path("deals/<int:pk>/won/", deals.deal_won, name="deal_won"),
    path("deals/<int:pk>/lost/", deals.deal_lost, name="deal_lost"),
    path("deals/<int:pk>/reopen/", deals.deal_reopen, name="deal_reopen"),
    path("deals/<int:pk>/participants/", deals.deal_participants, name="deal_participants"),
    path("settings/pipelines/", deals.pipeline_settings, name="settings"),
    # One POST endpoint per settings form, spelled out (no catch-all route to guess at).
    *(
        path(
            f"settings/pipelines/{action}/",
            deals.pipeline_settings_post,
            {"action": action},
            name=f"settings_{action}",
        )
        for action in deals.SETTINGS_ACTIONS
    ),
    path("tasks/", activities.my_day, name="tasks"),
]

# The activity panel, the task posts and the reports keep their own namespace, "activities"
# (`reverse("activities:item", ...)`): cdp_crm/urls.py includes this list as
# `include((activity_urlpatterns, "activities"))`, since a urls module has one app_name.
activity_urlpatterns = [
    # The activity panel each record page lazy-loads, and the posts it makes (per scope, so the
    # URL names the record the activity or task is logged on).
    *[
        route
        for scope, prefix in (("contact", "contacts"), ("company", "companies"), ("deal", "deals"))
        for route in (
            path(
                f"{prefix}/<int:pk>/activities/",
                activities.record_activities,
                {"scope": scope},
                name=scope,
            ),
            path(
                f"{prefix}/<int:pk>/activities/log/",
                activities.activity_create,
                {"scope": scope},
                name=f"{scope}_log",
            ),
            path(
                f"{prefix}/<int:pk>/tasks/new/",
                activities.task_create,
                {"scope": scope},
                name=f"{scope}_task",
            ),
        )
    ],
    path("activities/<int:pk>/", activities.activity_item, name="item"),
    path("activities/<int:pk>/edit/", activities.activity_edit, name="edit"),
    path("activities/<int:pk>/delete/", activities.activity_delete, name="delete"),
    path("tasks/<int:pk>/toggle/", activities.task_toggle, name="task_toggle"),
    path("tasks/<int:pk>/edit/", activities.task_edit, name="task_edit"),
    path("tasks/new/", activities.my_day_task_create, name="my_day_task"),
    path("tasks/deal-options/", activities.deal_options, name="deal_options"),
    path("reports/", reports.reports, name="reports"),
]
