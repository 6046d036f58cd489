"""Small factories for tests: plain functions with sensible defaults."""

import itertools

from django.contrib.auth import get_user_model

from accounts import services as account_services
from accounts.models import Role
from contacts import services as contact_services
from contacts.models import Company, Contact

_seq = itertools.count(1)

PASSWORD = "correct-horse-battery-staple"


def make_user(*, role: str = Role.SALES, username: str | None = None, password: str = PASSWORD, **extra):
    username = username or f"user{next(_seq)}"
    return account_services.user_create(username=username, password=password, role=role, **extra)


def make_admin(**kwargs):
    return make_user(role=Role.ADMIN, **kwargs)


def user_model():
    return get_user_model()


def make_company(*, name: str | None = None, **fields) -> Company:
    """A company created by the system (no actor), so it has no owner unless one is given."""
    return contact_services.company_create(actor=None, name=name or f"Company {next(_seq)}", **fields)


def make_contact(*, is_identified: bool = True, merged_into: Contact | None = None, **fields) -> Contact:
    """A contact created by the system (no actor), so it has no owner unless one is given.

    `is_identified` and `merged_into` belong to the identity worker, not to the CRM services, so
    they are set on the row directly.
    """
    if not any(fields.get(name) for name in contact_services.IDENTIFYING_FIELDS):
        fields["first_name"] = f"Contact {next(_seq)}"  # contact_create needs a name, email or phone
    contact = contact_services.contact_create(actor=None, **fields)
    if not is_identified or merged_into is not None:
        Contact.objects.filter(pk=contact.pk).update(is_identified=is_identified, merged_into=merged_into)
        contact.refresh_from_db()
    return contact


def logs_in(client, username: str, password: str) -> bool:
    """Log in through the real login form (the way a person does, throttling included); True
    when it let the user in."""
    response = client.post("/login/", {"username": username, "password": password})
    return response.status_code == 302 and "_auth_user_id" in client.session
