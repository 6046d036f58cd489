import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import ApiToken, Role, token_digest
from accounts.permissions import ensure_admin
from accounts.roles import is_admin
from core.db import lock_rows
from core.errors import Conflict

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
    try:
        # Django's own rule (letters, digits and @ . + - _): `bad user!` cannot log in cleanly
        # and breaks @mentions and URLs that carry the name.
        get_user_model().username_validator(username)
    except ValidationError as exc:
        raise ValidationError({"username": exc.messages}) from exc
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


@transaction.atomic
def user_set_active(*, user, active: bool, actor: AbstractBaseUser | None):
    """Deactivate or reactivate a user. Deactivating ends their access at once: their sessions are
    deleted and their API tokens revoked (a reactivated user signs in again and makes new tokens).
    An Admin cannot deactivate themselves, and the last active Admin cannot be deactivated, so
    someone can always manage users."""
    ensure_admin(actor, message="Only Admins manage users.")
    User = get_user_model()
    # Lock the row first: two Admins deactivating the last two other Admins at once must not both
    # see one left.
    user = User.objects.select_for_update().get(pk=user.pk)
    if user.is_active == active:
        return user
    if not active:
        if actor is not None and actor.pk == user.pk:
            raise Conflict("You cannot deactivate yourself.", code="self_deactivation")
        if is_admin(user):
            admins = (
                User.objects.filter(is_active=True)
                .filter(Q(is_superuser=True) | Q(groups__name=Role.ADMIN))
                .distinct()
                .order_by("pk")
            )
            # pk order: concurrent deactivations lock the Admin rows in the same order.
            others = list(lock_rows(User.objects.filter(pk__in=admins).exclude(pk=user.pk)))
            if not others:
                raise Conflict(
                    "This is the last active Admin; make someone else an Admin first.", code="last_admin"
                )
    user.is_active = active
    user.save(update_fields=["is_active"])
    if not active:
        ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())
        user_sessions_delete(user=user)
    return user


def user_sessions_delete(*, user) -> int:
    """Delete every database session signed in as `user`; returns how many.

    Sessions store the user id only inside their encoded data, so this decodes each live session:
    a scan, fine for a team's few thousand sessions and done only when someone is deactivated.
    Even a session that escaped it would not sign anyone in: Django's ModelBackend refuses
    inactive users on every request.
    """
    now = timezone.now()
    ids = []
    for session in Session.objects.filter(expire_date__gt=now).iterator(chunk_size=500):
        if str(session.get_decoded().get("_auth_user_id")) == str(user.pk):
            ids.append(session.pk)
    return Session.objects.filter(pk__in=ids).delete()[0]
