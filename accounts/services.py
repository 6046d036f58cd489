import secrets
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from accounts.models import ApiToken, token_digest

TOKEN_PREFIX = "cdp_"
# Writing last_used_at on every request would turn each API read into a write; once a minute is
# enough to show which tokens are alive.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def api_token_create(*, user: AbstractBaseUser, name: str = "API token") -> tuple[ApiToken, str]:
    """Create a token and return it with its raw value, which is shown once and never stored."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name, digest=token_digest(raw), prefix=raw[:12])
    return token, raw


def api_token_authenticate(*, raw: str) -> ApiToken | None:
    token = (
        ApiToken.objects.select_related("user")
        .filter(digest=token_digest(raw), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


@transaction.atomic
def api_token_revoke(*, token: ApiToken) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


@transaction.atomic
def user_create(
    *,
    username: str,
    password: str | None,
    role: str,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
):
    """Create a user in exactly one role group. Admins also get Django's staff flag."""
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(
        username=username, email=email, password=password, first_name=first_name, last_name=last_name
    )
    user_set_role(user=user, role=role)
    return user


@transaction.atomic
def user_set_role(*, user, role: str):
    from django.contrib.auth.models import Group

    from accounts.models import Role

    if role not in Role.values:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(Role.values)}")
    user.groups.remove(*Group.objects.filter(name__in=Role.values))
    # get_or_create: the groups come from a migration, but a flushed or hand-edited database
    # must not make role assignment fail.
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    user.is_staff = role == Role.ADMIN
    user.save(update_fields=["is_staff"])
    user.__dict__.pop("_cdp_roles", None)
    return user
