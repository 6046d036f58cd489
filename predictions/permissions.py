"""Who may do what with predictive models.

- Every role reads models, their quality and each contact's predictions (a rep wants to know whom
  to call first).
- Admin and Marketing create, edit, delete and retrain models: which goal the workspace predicts,
  and when a model is good enough to publish, is an audience decision, as with segments.
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
        raise Forbidden("You do not have a role that may read predictive models.")


def ensure_can_manage(user: AbstractBaseUser | None) -> None:
    if user is not None and not can_manage(user):
        raise Forbidden("Only Admin and Marketing may change predictive models.")
