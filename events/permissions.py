"""Who may see and manage sources, and who reads the events debugger.

- Admin and Marketing manage sources: create, edit, rotate write keys, see keys and snippets.
- Sales sees which sources exist and whether they receive events (names, kinds, counts), but not
  their write keys or snippets, and changes nothing: a rep has no reason to install tracking, and
  a key shown on every rep's screen is a key that leaks.
- The events debugger (what arrives, what was rejected, what the worker gave up on) is for Admin
  and Marketing, who install tracking; only an Admin re-queues a dead-lettered event.
- A signed-in user in no role sees nothing.

Services call the `ensure_*` functions with their `actor`; `actor=None` is the system itself (a
management command) and skips the checks.
"""

from django.contrib.auth.models import AbstractBaseUser

from accounts.models import Role
from accounts.roles import has_role
from core.errors import Forbidden


def can_view_sources(user: AbstractBaseUser) -> bool:
    return has_role(user, Role.ADMIN, Role.MARKETING, Role.SALES)


def can_manage_sources(user: AbstractBaseUser) -> bool:
    """Also governs seeing write keys and snippets."""
    return has_role(user, Role.ADMIN, Role.MARKETING)


def ensure_can_view_sources(user: AbstractBaseUser | None) -> None:
    if user is not None and not can_view_sources(user):
        raise Forbidden("You do not have a role that may see sources.")


def ensure_can_manage_sources(user: AbstractBaseUser | None) -> None:
    if user is not None and not can_manage_sources(user):
        raise Forbidden("Only Admin and Marketing manage sources and see their write keys.")


def can_view_events(user: AbstractBaseUser) -> bool:
    return has_role(user, Role.ADMIN, Role.MARKETING)


def can_retry_events(user: AbstractBaseUser) -> bool:
    return has_role(user, Role.ADMIN)
