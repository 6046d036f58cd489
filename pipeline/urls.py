from django.urls import path

from pipeline import activity_views, views

app_name = "pipeline"

urlpatterns = [
    path("pipeline/contacts/<int:pk>/deals/", views.contact_deals, name="contact_deals"),
    path("pipeline/companies/<int:pk>/deals/", views.company_deals, name="company_deals"),
    path("pipeline/", views.board, name="board"),
    path("pipeline/stages/<int:pk>/cards/", views.board_column, name="board_column"),
    path("pipeline/contact-options/", views.contact_options, name="contact_options"),
    path("deals/new/", views.deal_create, name="deal_create"),
    path("deals/<int:pk>/", views.deal_detail, name="deal_detail"),
    path("deals/<int:pk>/edit/", views.deal_edit, name="deal_edit"),
    path("deals/<int:pk>/move/", views.deal_move, name="deal_move"),
    path("deals/<int:pk>/won/", views.deal_won, name="deal_won"),
    path("deals/<int:pk>/lost/", views.deal_lost, name="deal_lost"),
    path("deals/<int:pk>/reopen/", views.deal_reopen, name="deal_reopen"),
    path("deals/<int:pk>/participants/", views.deal_participants, name="deal_participants"),
    path("settings/pipelines/", views.pipeline_settings, name="settings"),
    # One POST endpoint per settings form, spelled out (no catch-all route to guess at).
    *(
        path(
            f"settings/pipelines/{action}/",
            views.pipeline_settings_post,
            {"action": action},
            name=f"settings_{action}",
        )
        for action in views.SETTINGS_ACTIONS
    ),
    path("tasks/", activity_views.my_day, name="tasks"),
]
