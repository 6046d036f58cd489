import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from accounts.models import Role
from accounts.roles import primary_role
from tests.factories import PASSWORD, logs_in, make_user


@pytest.mark.django_db
def test_role_groups_exist_after_migrations():
    assert set(Group.objects.values_list("name", flat=True)) >= {"Admin", "Sales", "Marketing"}


@pytest.mark.django_db
def test_a_user_has_exactly_one_role_and_admins_are_staff(admin_client, admin_user):
    user = make_user(role=Role.SALES, username="bob")
    assert primary_role(user) == "Sales" and not user.is_staff
    # when an Admin makes bob an Admin through Settings
    response = admin_client.post(reverse("accounts:user_set_role", args=[user.pk]), {"role": "Admin"})
    assert response.status_code == 302
    user.refresh_from_db()
    assert list(user.groups.values_list("name", flat=True)) == ["Admin"]
    assert user.is_staff


@pytest.mark.django_db
def test_admin_adds_a_user_who_can_then_log_in(admin_client, client):
    response = admin_client.post(
        reverse("accounts:user_create"),
        {"username": "carol", "email": "carol@example.com", "role": "Marketing", "password": PASSWORD},
    )
    assert response.status_code == 302
    assert logs_in(client, "carol", PASSWORD)
    html = client.get(reverse("home")).content.decode()
    assert "Marketing" in html


@pytest.mark.django_db
def test_adding_a_user_with_a_weak_password_shows_the_error_in_place(admin_client):
    response = admin_client.post(
        reverse("accounts:user_create"), {"username": "dave", "role": "Sales", "password": "123"}
    )
    assert response.status_code == 400
    assert "This password is too short" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["Sales", "Marketing"])
def test_only_admins_manage_users(client, role):
    user = make_user(role=role)
    other = make_user(role="Sales")
    client.force_login(user)
    assert "Users and roles" not in client.get(reverse("accounts:settings")).content.decode()
    assert (
        client.post(reverse("accounts:user_set_role", args=[other.pk]), {"role": "Admin"}).status_code == 403
    )
    assert client.post(reverse("accounts:user_create"), {"username": "x"}).status_code == 403
    other.refresh_from_db()
    assert primary_role(other) == "Sales"


@pytest.mark.django_db
def test_an_admin_cannot_demote_themselves(admin_client, admin_user):
    admin_client.post(reverse("accounts:user_set_role", args=[admin_user.pk]), {"role": "Sales"})
    admin_user.refresh_from_db()
    assert primary_role(admin_user) == "Admin"


@pytest.mark.django_db
def test_login_and_logout_through_the_pages(client, sales_user):
    response = client.post(reverse("login"), {"username": "sales-user", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("home")
    assert client.get(reverse("home")).status_code == 200
    client.post(reverse("logout"))
    assert client.get(reverse("home")).status_code == 302


@pytest.mark.django_db
def test_wrong_password_shows_an_error_on_the_login_page(client, sales_user):
    response = client.post(reverse("login"), {"username": "sales-user", "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()


@pytest.mark.django_db
def test_password_change(client, sales_user):
    client.force_login(sales_user)
    new = "another-long-passphrase-42"
    response = client.post(
        reverse("password_change"), {"old_password": PASSWORD, "new_password1": new, "new_password2": new}
    )
    assert response.status_code == 302
    sales_user.refresh_from_db()
    assert sales_user.check_password(new)
