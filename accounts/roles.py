from django.contrib.auth.models import AbstractBaseUser

from accounts.models import Role

# What "Add user" starts from, so a hurried Admin grants too little rather than everything. Sales
# sees no secrets (no write keys, no webhook URLs) and changes only its own or unowned records;
# Marketing manages sources and webhooks, which read keys and send every contact off-site.
LEAST_PRIVILEGED_ROLE = Role.SALES


def user_roles(user: AbstractBaseUser) -> set[str]:
    if not user.is_authenticated:
        return set()
    if user.is_superuser:
        return {Role.ADMIN}
    cached = getattr(user, "_cdp_roles", None)
    if cached is None:
        cached = set(user.groups.values_list("name", flat=True)) & set(Role.values)
        user._cdp_roles = cached
    return cached


def has_role(user: AbstractBaseUser, *roles: str) -> bool:
    return bool(user_roles(user) & set(roles))


def is_admin(user: AbstractBaseUser) -> bool:
    return has_role(user, Role.ADMIN)


def primary_role(user: AbstractBaseUser) -> str | None:
    """The role to show in the UI: Admin over Sales over Marketing."""
    roles = user_roles(user)
    for role in (Role.ADMIN, Role.SALES, Role.MARKETING):
        if role in roles:
            return role
    return None
