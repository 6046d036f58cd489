"""Issue 19.6: adding users starts from the least role, usernames follow Django's rules, and an
Admin deactivates (and reactivates) users with their access revoked at once."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from accounts import services
from accounts.models import ApiToken, Role
from accounts.roles import primary_role
from core.errors import Conflict
from tests.factories import PASSWORD, logs_in, make_admin, make_user


@pytest.mark.django_db
def test_add_user_form_starts_from_the_least_privileged_role(admin_client):
    html = admin_client.get(reverse("accounts:settings")).content.decode()
    add_form = html[html.index(f'action="{reverse("accounts:user_create")}"') :]
    assert '<option value="Sales" selected>' in add_form
    assert '<option value="Admin" selected>' not in add_form


@pytest.mark.django_db
@pytest.mark.parametrize("username", ["bad user!", "semi;colon", "<b>x</b>"])
def test_a_username_outside_djangos_rules_is_a_form_error(admin_client, username):
    response = admin_client.post(
        reverse("accounts:user_create"), {"username": username, "role": "Sales", "password": PASSWORD}
    )
    assert response.status_code == 400
    assert "letters, numbers, and @/./+/-/_" in response.content.decode()
    assert not get_user_model().objects.filter(username=username).exists()


@pytest.mark.django_db
def test_the_service_refuses_a_bad_username_too_and_takes_the_allowed_punctuation():
    with pytest.raises(ValidationError) as excinfo:
        services.user_create(username="bad user!", password=PASSWORD, role=Role.SALES)
    assert "username" in excinfo.value.message_dict
    assert not get_user_model().objects.filter(username="bad user!").exists()
    user = services.user_create(username="ana.m+crm@example_co-1", password=PASSWORD, role=Role.SALES)
    assert user.get_username() == "ana.m+crm@example_co-1"


@pytest.mark.django_db
def test_deactivating_a_user_signs_them_out_and_revokes_their_tokens_at_once(admin_client):
    # given bob, signed in through the login page in his own browser and holding an API token
    client = Client()
    bob = make_user(role=Role.SALES, username="bob")
    assert logs_in(client, "bob", PASSWORD)
    assert client.get(reverse("home")).status_code == 200
    _, raw = services.api_token_create(user=bob)
    assert client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {raw}").status_code == 200
    # when an Admin deactivates him from the users table
    response = admin_client.post(reverse("accounts:user_set_active", args=[bob.pk]), {"active": "0"})
    assert response.status_code == 302
    # then his next page asks him to log in, his token answers 401, and he cannot log in again
    page = client.get(reverse("home"))
    assert page.status_code == 302 and page["Location"].startswith(reverse("login"))
    assert client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {raw}").status_code == 401
    assert ApiToken.objects.get(user=bob).revoked_at is not None
    assert not any(s.get_decoded().get("_auth_user_id") == str(bob.pk) for s in Session.objects.all())
    assert not logs_in(client, "bob", PASSWORD)
    bob.refresh_from_db()
    assert not bob.is_active
    assert "deactivated" in admin_client.get(reverse("accounts:settings")).content.decode()


@pytest.mark.django_db
def test_deactivation_keeps_other_users_sessions(admin_client):
    client = Client()
    bob = make_user(role=Role.SALES, username="bob")
    make_user(role=Role.SALES, username="carol")
    assert logs_in(client, "carol", PASSWORD)
    admin_client.post(reverse("accounts:user_set_active", args=[bob.pk]), {"active": "0"})
    assert client.get(reverse("home")).status_code == 200
    assert admin_client.get(reverse("accounts:settings")).status_code == 200


@pytest.mark.django_db
def test_a_reactivated_user_logs_in_again_but_old_tokens_stay_revoked(admin_client):
    client = Client()
    bob = make_user(role=Role.SALES, username="bob")
    _, raw = services.api_token_create(user=bob)
    admin_client.post(reverse("accounts:user_set_active", args=[bob.pk]), {"active": "0"})
    response = admin_client.post(reverse("accounts:user_set_active", args=[bob.pk]), {"active": "1"})
    assert response.status_code == 302
    assert logs_in(client, "bob", PASSWORD)
    assert client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Token {raw}").status_code == 401


@pytest.mark.django_db
def test_an_admin_cannot_deactivate_themselves(admin_client, admin_user):
    response = admin_client.post(reverse("accounts:user_set_active", args=[admin_user.pk]), {"active": "0"})
    assert response.status_code == 302
    admin_user.refresh_from_db()
    assert admin_user.is_active
    follow = admin_client.get(reverse("accounts:settings")).content.decode()
    assert "You cannot deactivate yourself" in follow


@pytest.mark.django_db
def test_the_last_active_admin_cannot_be_deactivated():
    # given two Admins, one already deactivated
    last = make_admin(username="last")
    gone = make_admin(username="gone")
    services.user_set_active(user=gone, active=False, actor=last)
    # when the system (no actor, so no self check) tries to deactivate the last one
    with pytest.raises(Conflict) as excinfo:
        services.user_set_active(user=last, active=False, actor=None)
    assert excinfo.value.code == "last_admin"
    last.refresh_from_db()
    assert last.is_active and primary_role(last) == "Admin"


@pytest.mark.django_db
def test_an_admin_may_deactivate_another_admin_while_one_remains(admin_client, admin_user):
    other = make_admin(username="other-admin")
    admin_client.post(reverse("accounts:user_set_active", args=[other.pk]), {"active": "0"})
    other.refresh_from_db()
    assert not other.is_active


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["Sales", "Marketing"])
def test_only_admins_deactivate_users(client, role):
    user = make_user(role=role)
    other = make_user(role=Role.SALES)
    client.force_login(user)
    response = client.post(reverse("accounts:user_set_active", args=[other.pk]), {"active": "0"})
    assert response.status_code == 403
    other.refresh_from_db()
    assert other.is_active
