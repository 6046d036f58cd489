"""Writes: deals (deals), pipelines, stages and lost reasons (pipelines), activities and tasks
(activities), what a new installation starts with (defaults). Other apps import
`from pipeline import services` or a topic module (`from pipeline.services import activities`)."""

from pipeline.services.activities import (
    activity_delete,
    activity_log,
    activity_update,
    deal_activity_dates_refresh,
    task_complete,
    task_create,
    task_delete,
    task_reopen,
    task_update,
    tasks_send_reminders,
)
from pipeline.services.deals import (
    deal_create,
    deal_mark_lost,
    deal_mark_won,
    deal_move,
    deal_reopen,
    deal_update,
)
from pipeline.services.defaults import install_defaults
from pipeline.services.pipelines import (
    lost_reason_create,
    lost_reason_delete,
    lost_reason_update,
    pipeline_create,
    pipeline_delete,
    pipeline_rename,
    stage_create,
    stage_delete,
    stage_reorder,
    stage_update,
)

__all__ = [
    "activity_delete",
    "activity_log",
    "activity_update",
    "deal_activity_dates_refresh",
    "deal_create",
    "deal_mark_lost",
    "deal_mark_won",
    "deal_move",
    "deal_reopen",
    "deal_update",
    "install_defaults",
    "lost_reason_create",
    "lost_reason_delete",
    "lost_reason_update",
    "pipeline_create",
    "pipeline_delete",
    "pipeline_rename",
    "stage_create",
    "stage_delete",
    "stage_reorder",
    "stage_update",
    "task_complete",
    "task_create",
    "task_delete",
    "task_reopen",
    "task_update",
    "tasks_send_reminders",
]
