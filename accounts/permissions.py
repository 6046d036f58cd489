"""The role check every app's Admin-only actions share (users, custom fields, identity settings,
merge splits, erasures)."""

from django.contrib.auth.models import AbstractBaseUser

from accounts.roles import is_admin
from core.errors import Forbidden


def ensure_admin(actor: AbstractBaseUser | None, *, message: str) -> None:
    """Forbidden (with `message`, what only an Admin may do) unless `actor` is an Admin. None is the
    system (a management command, a task, the demo seed), which may. HTML views wrapped in
    core.errors.domain_errors answer it with the 403 page."""
    if actor is not None and not is_admin(actor):
        raise Forbidden(message)
