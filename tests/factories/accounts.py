"""Users and signing in."""

import itertools

from django.contrib.auth import get_user_model

from accounts import services as account_services
from accounts.models import Role

_seq = itertools.count(1)

PASSWORD = "correct-horse-battery-staple"


def make_user(*, role: str = Role.SALES, username: str | None = None, password: str = PASSWORD, **extra):
    username = username or f"user{next(_seq)}"
    return account_services.user_create(username=username, password=password, role=role, **extra)


def make_admin(**kwargs):
    return make_user(role=Role.ADMIN, **kwargs)


def user_model():
    return get_user_model()


def logs_in(client, username: str, password: str) -> bool:
    """Log in through the real login form (the way a person does, throttling included); True
    when it let the user in."""
    response = client.post("/login/", {"username": username, "password": password})
    return response.status_code == 302 and "_auth_user_id" in client.session
