"""Who may read and change contacts and companies.

The rules, as in Pipedrive's default "regular user" permission set:

- Admin reads and changes everything.
- Sales reads everything, creates records, and changes or deletes records it owns **or that have
  no owner**. Unowned records are the shared pool (imports, web sign-ups, records whose owner
  left): any rep may work them and claim them by setting themselves as owner. Once another rep
  owns a record it is theirs; only they or an Admin change it.
- Marketing reads everything and changes nothing (segments and campaigns read contacts; they do
  not edit the CRM record).
- A signed-in user in no role sees nothing.

Services call the `ensure_*` functions with their `actor`; `actor=None` means the system itself
(the identity worker, imports run by a management command) and skips the checks.
"""

from django.contrib.auth.models import AbstractBaseUser

from accounts.models import Role
from accounts.roles import has_role
from contacts.models import Company, Contact
from core.errors import Forbidden

Record = Contact | Company


def can_read(user: AbstractBaseUser) -> bool:
    return has_role(user, Role.ADMIN, Role.SALES, Role.MARKETING)


def can_create(user: AbstractBaseUser) -> bool:
    return has_role(user, Role.ADMIN, Role.SALES)


def can_import(user: AbstractBaseUser) -> bool:
    """An import creates records, so it follows the create rule."""
    return can_create(user)


def can_merge(user: AbstractBaseUser) -> bool:
    """The duplicate finder exists to merge; Marketing, which changes no CRM record, has no use for
    it. Each merge still checks that both contacts are ones the user may change."""
    return can_create(user)


def can_manage_custom_fields(user: AbstractBaseUser) -> bool:
    """A custom field changes every record's form and list columns: the workspace's shape."""
    return has_role(user, Role.ADMIN)


def can_change(user: AbstractBaseUser, record: Record) -> bool:
    """Update and delete follow the same rule: a rep who may edit a record may also remove it."""
    if has_role(user, Role.ADMIN):
        return True
    return has_role(user, Role.SALES) and record.owner_id in (None, user.pk)


def ensure_can_read(user: AbstractBaseUser | None) -> None:
    if user is not None and not can_read(user):
        raise Forbidden("You do not have a role that may read CRM records.")


def ensure_can_create(user: AbstractBaseUser | None, *, kind: str) -> None:
    if user is not None and not can_create(user):
        raise Forbidden(f"Your role may not create {kind}.")


def ensure_can_change(user: AbstractBaseUser | None, record: Record) -> None:
    if user is not None and not can_change(user, record):
        kind = "contact" if isinstance(record, Contact) else "company"
        if has_role(user, Role.SALES):
            raise Forbidden(f"This {kind} belongs to another owner; only they or an Admin may change it.")
        raise Forbidden(f"Your role may not change a {kind}.")
