"""Who may read and change deals and pipelines.

The same rules as contacts.permissions (Pipedrive's default "regular user" set):

- Admin reads and changes everything, and alone edits pipelines, stages and lost reasons.
- Sales reads the whole team's board, creates deals, and changes deals it owns or that have no
  owner (the shared pool); another rep's deal is theirs to change.
- Marketing reads deals and changes nothing.

Activities and tasks follow the same rules with one difference: a rep logs activities and tasks on
any record they can read (the whole team's), because talking to a customer is not editing the
record. Only the author (activities) or the assignee / creator (tasks), or an Admin, change them
afterwards. Marketing reads and writes nothing there.

`actor=None` is the system itself and skips the checks.
"""

from django.contrib.auth.models import AbstractBaseUser

from accounts.models import Role
from accounts.roles import has_role
from contacts.permissions import can_read, ensure_can_read
from core.errors import Forbidden
from pipeline.models import Activity, Deal, Task

__all__ = [
    "can_change_activity",
    "can_change_deal",
    "can_change_task",
    "can_read",
    "can_write",
    "ensure_can_change_deal",
    "ensure_can_change_task",
    "ensure_can_create_deal",
    "ensure_can_read",
    "ensure_can_write",
]


def can_create_deal(user: AbstractBaseUser) -> bool:
    return has_role(user, Role.ADMIN, Role.SALES)


def can_change_deal(user: AbstractBaseUser, deal: Deal) -> bool:
    if has_role(user, Role.ADMIN):
        return True
    return has_role(user, Role.SALES) and deal.owner_id in (None, user.pk)


def can_configure(user: AbstractBaseUser) -> bool:
    return has_role(user, Role.ADMIN)


def ensure_can_create_deal(user: AbstractBaseUser | None) -> None:
    if user is not None and not can_create_deal(user):
        raise Forbidden("Your role may not create deals.")


def ensure_can_change_deal(user: AbstractBaseUser | None, deal: Deal) -> None:
    if user is not None and not can_change_deal(user, deal):
        if has_role(user, Role.SALES):
            raise Forbidden("This deal belongs to another owner; only they or an Admin may change it.")
        raise Forbidden("Your role may not change deals.")


def ensure_can_configure(user: AbstractBaseUser | None) -> None:
    if user is not None and not can_configure(user):
        raise Forbidden("Only an Admin may change pipelines, stages and lost reasons.")


# --- activities and tasks


def can_write(user: AbstractBaseUser | None) -> bool:
    """May log activities and create tasks (on any record the user can read)."""
    return user is None or has_role(user, Role.ADMIN, Role.SALES)


def can_change_activity(user: AbstractBaseUser | None, activity: Activity) -> bool:
    if user is None or has_role(user, Role.ADMIN):
        return True
    return has_role(user, Role.SALES) and activity.author_id == user.pk


def can_change_task(user: AbstractBaseUser | None, task: Task) -> bool:
    if user is None or has_role(user, Role.ADMIN):
        return True
    return has_role(user, Role.SALES) and user.pk in (task.assignee_id, task.created_by_id)


def ensure_can_change_task(user: AbstractBaseUser | None, task: Task) -> None:
    if not can_change_task(user, task):
        raise Forbidden("Only the assignee, the creator or an Admin may change this task.")


def ensure_can_write(user: AbstractBaseUser | None, *, what: str) -> None:
    if not can_write(user):
        raise Forbidden(f"Your role may not log {what}.")
