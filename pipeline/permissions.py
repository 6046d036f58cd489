"""Who may read and change deals and pipelines.

The same rules as contacts.permissions (Pipedrive's default "regular user" set):

- Admin reads and changes everything, and alone edits pipelines, stages and lost reasons.
- Sales reads the whole team's board, creates deals, and changes deals it owns or that have no
  owner (the shared pool); another rep's deal is theirs to change.
- Marketing reads deals and changes nothing.

`actor=None` is the system itself and skips the checks.
"""

from django.contrib.auth.models import AbstractBaseUser

from accounts.models import Role
from accounts.roles import has_role
from contacts.permissions import can_read, ensure_can_read
from core.errors import Forbidden
from pipeline.models import Deal

__all__ = [
    "can_change_deal",
    "can_read",
    "ensure_can_change_deal",
    "ensure_can_create_deal",
    "ensure_can_read",
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
