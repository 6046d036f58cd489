"""Who may export and erase a person.

- Export person: an Admin, or a Sales rep for the contacts they may edit (their own and unowned
  ones: contacts.permissions.can_change). Marketing never: an export is every byte held on someone.
- Erase person, and the erasure log: an Admin only (it cannot be undone).

`actor=None` is the system itself (a task, a management command) and may erase.
"""

from django.contrib.auth.models import AbstractBaseUser

from accounts.models import Role
from accounts.permissions import ensure_admin
from accounts.roles import has_role, is_admin
from contacts.models import Contact
from contacts.permissions import can_change
from core.errors import Forbidden


def can_export(user: AbstractBaseUser, contact: Contact) -> bool:
    return is_admin(user) or (has_role(user, Role.SALES) and can_change(user, contact))


def ensure_can_export(user: AbstractBaseUser, contact: Contact) -> None:
    if not can_export(user, contact):
        raise Forbidden("Only an Admin, or the rep who may edit this contact, may export its data.")


def ensure_can_erase(user: AbstractBaseUser | None) -> None:
    ensure_admin(user, message="Only an Admin may erase a person.")


def ensure_can_see_erasures(user: AbstractBaseUser | None) -> None:
    ensure_admin(user, message="Only an Admin may see the erasure log.")
