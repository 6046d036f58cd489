"""Who may do what with segments.

- Every role reads segments, their members and the contact page's segment panel (a rep wants to
  know a lead is "pricing-curious"; members are CRM records they may already read).
- Admin and Marketing build, edit and delete segments, change static members and manage webhooks:
  audiences are marketing's tool, and Marketing's CRM read-only rule is about CRM records, which
  segment membership does not change.
- Webhooks and their delivery log are seen by Admin and Marketing only: a webhook URL is often a
  credential (Slack, Zapier and similar hooks carry their token in the path).
- Only an Admin may let a webhook reach private, loopback or link-local addresses (an SSRF door).
"""

from django.contrib.auth.models import AbstractBaseUser

from accounts.models import Role
from accounts.roles import has_role
from core.errors import Forbidden


def can_read(user: AbstractBaseUser) -> bool:
    return has_role(user, Role.ADMIN, Role.SALES, Role.MARKETING)


def can_manage(user: AbstractBaseUser) -> bool:
    return has_role(user, Role.ADMIN, Role.MARKETING)


def can_allow_private(user: AbstractBaseUser) -> bool:
    return has_role(user, Role.ADMIN)


def ensure_can_read(user: AbstractBaseUser | None) -> None:
    if user is not None and not can_read(user):
        raise Forbidden("You do not have a role that may read segments.")


def ensure_can_manage(user: AbstractBaseUser | None) -> None:
    if user is not None and not can_manage(user):
        raise Forbidden("Only Admin and Marketing may change segments.")


def ensure_can_allow_private(user: AbstractBaseUser | None) -> None:
    if user is not None and not can_allow_private(user):
        raise Forbidden("Only an Admin may allow a webhook to reach private addresses.")
