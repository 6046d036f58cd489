"""Who may do what with computed traits.

- Every role reads trait values (the contact and company pages, the list columns, the API):
  they are derived from events a rep already sees on the contact's timeline.
- Admin and Marketing define, change, delete and recompute traits (Settings → Traits), like
  segments: they are marketing's tool.
"""

from django.contrib.auth.models import AbstractBaseUser

from accounts.models import Role
from accounts.roles import has_role
from core.errors import Forbidden


def can_read(user: AbstractBaseUser) -> bool:
    return has_role(user, Role.ADMIN, Role.SALES, Role.MARKETING)


def can_manage(user: AbstractBaseUser) -> bool:
    return has_role(user, Role.ADMIN, Role.MARKETING)


def ensure_can_read(user: AbstractBaseUser | None) -> None:
    if user is not None and not can_read(user):
        raise Forbidden("You do not have a role that may read computed traits.")


def ensure_can_manage(user: AbstractBaseUser | None) -> None:
    if user is not None and not can_manage(user):
        raise Forbidden("Only Admin and Marketing may change computed traits.")
