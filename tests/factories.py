"""Small factories for tests: plain functions with sensible defaults."""

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
