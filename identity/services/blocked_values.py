"""The editable list of identifier values the stitching worker ignores ("null", "undefined", ...)."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from accounts.permissions import ensure_admin
from core.errors import Conflict, DomainError
from identity.models import BlockedValue, IdentityKind

ADMIN_ONLY = "Only Admins change the blocked values."


def blocked_value_add(*, actor: AbstractBaseUser | None, value: str, kind: str = "") -> BlockedValue:
    """Block a value for one identifier kind, or for every kind when `kind` is empty. Values are
    stored trimmed and lower-cased: the worker compares them that way."""
    ensure_admin(actor, message=ADMIN_ONLY)
    value = (value or "").strip().lower()
    if kind and kind not in IdentityKind.values:
        raise DomainError(
            "Unknown identifier kind.", fields={"kind": [f"Expected one of {IdentityKind.values}."]}
        )
    if len(value) > 300:
        raise DomainError("Too long.", fields={"value": ["At most 300 characters."]})
    try:
        with transaction.atomic():
            return BlockedValue.objects.create(kind=kind, value=value, created_by=actor)
    except IntegrityError:
        raise Conflict(
            "This value is already blocked.", fields={"value": ["This value is already blocked."]}
        ) from None


@transaction.atomic
def blocked_value_remove(*, actor: AbstractBaseUser | None, blocked: BlockedValue) -> None:
    ensure_admin(actor, message=ADMIN_ONLY)
    BlockedValue.objects.filter(pk=blocked.pk).delete()
