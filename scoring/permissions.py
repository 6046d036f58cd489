"""Who may do what with lead scores.

- Every role reads scores and their explanations (a rep wants to know whom to call first; the
  score says nothing a contact's own page does not).
- Admin and Marketing create, edit and delete score models (Settings → Scoring), as segments.
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
        raise Forbidden("You do not have a role that may read lead scores.")


def ensure_can_manage(user: AbstractBaseUser | None) -> None:
    if user is not None and not can_manage(user):
        raise Forbidden("Only Admin and Marketing may change score models.")
