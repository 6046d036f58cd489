"""The role rules of contacts.permissions, checked through the HTML views for each role."""

import pytest

from contacts.models import Company, Contact
from tests.factories import make_admin, make_company, make_contact, make_user

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def people():
    return {
        "admin": make_admin(),
        "rep": make_user(role="Sales"),
        "other_rep": make_user(role="Sales"),
        "marketer": make_user(role="Marketing"),
    }


# (who, whose record) -> may change
MATRIX = [
    ("admin", "other_rep", True),
    ("admin", None, True),
    ("rep", "rep", True),
    ("rep", None, True),
    ("rep", "other_rep", False),
    ("marketer", None, False),
    ("marketer", "marketer", False),
]


@pytest.mark.parametrize(("who", "owner", "may_change"), MATRIX)
def test_contact_views_follow_the_role_matrix(client, people, who, owner, may_change):
    # given a contact owned by `owner` (or nobody)
    contact = make_contact(first_name="Ada", phone="1", owner=people[owner] if owner else None)
    client.force_login(people[who])
    # everyone with a role reads the list and the page
    listing = client.get("/contacts/")
    assert listing.status_code == 200 and "Ada" in listing.content.decode()
    page = client.get(f"/contacts/{contact.pk}/").content.decode()
    edit_hook = f'/contacts/{contact.pk}/cell/phone/?edit=1"'
    # edit controls only where a change is allowed
    assert (edit_hook in page) is may_change
    assert ('data-testid="edit-record"' in page) is may_change
    # and the writes answer the same way
    cell = client.post(f"/contacts/{contact.pk}/cell/phone/", {"phone": "2"}, **HTMX)
    edit = client.post(
        f"/contacts/{contact.pk}/edit/", {"first_name": "X", "phone": "2", "lifecycle_stage": "lead"}
    )
    contact.refresh_from_db()
    if may_change:
        assert cell.status_code == 200 and edit.status_code == 302
        assert (contact.phone, contact.first_name) == ("2", "X")
    else:
        assert cell.status_code == 403 and edit.status_code == 403
        assert (contact.phone, contact.first_name) == ("1", "Ada")
        assert (
            client.get(f"/contacts/{contact.pk}/cell/phone/?edit=1", **HTMX).content.decode().count("<input")
            == 0
        )
    delete = client.post(f"/contacts/{contact.pk}/delete/")
    assert delete.status_code == (302 if may_change else 403)
    assert Contact.objects.filter(pk=contact.pk).exists() is not may_change


@pytest.mark.parametrize(("who", "owner", "may_change"), MATRIX)
def test_company_views_follow_the_role_matrix(client, people, who, owner, may_change):
    company = make_company(name="Acme", owner=people[owner] if owner else None)
    client.force_login(people[who])
    page = client.get(f"/companies/{company.pk}/").content.decode()
    assert (f'/companies/{company.pk}/cell/industry/?edit=1"' in page) is may_change
    cell = client.post(f"/companies/{company.pk}/cell/industry/", {"industry": "Rockets"}, **HTMX)
    assert cell.status_code == (200 if may_change else 403)
    company.refresh_from_db()
    assert (company.industry == "Rockets") is may_change
    delete = client.post(f"/companies/{company.pk}/delete/")
    assert delete.status_code == (302 if may_change else 403)
    assert Company.objects.filter(pk=company.pk).exists() is not may_change


@pytest.mark.parametrize(
    "path", ["/contacts/quick-add/", "/contacts/new/", "/companies/new/", "/companies/quick-add/"]
)
def test_marketing_may_not_create(client, people, path):
    client.force_login(people["marketer"])
    assert client.get(path).status_code == 403
    assert (
        client.post(path, {"first_name": "Ada", "name": "Acme", "lifecycle_stage": "lead"}).status_code == 403
    )
    assert not Contact.objects.exists() and not Company.objects.exists()


def test_marketing_sees_no_write_controls_and_may_not_bulk_edit(client, people):
    contact = make_contact(first_name="Ada")
    client.force_login(people["marketer"])
    html = client.get("/contacts/").content.decode()
    assert 'data-testid="quick-add"' not in html and 'id="bulk-form"' not in html
    assert "cell-editable" not in html
    # the read-only tools stay: export, columns, saved views
    assert 'data-testid="export-csv"' in html and 'data-testid="column-chooser"' in html
    response = client.post("/contacts/bulk/", {"ids": [contact.pk], "action": "delete"})
    assert response.status_code == 403 and Contact.objects.filter(pk=contact.pk).exists()


def test_a_user_without_a_role_sees_no_crm_records(client):
    from django.contrib.auth import get_user_model

    make_contact(first_name="Ada")

    roleless = get_user_model().objects.create_user(username="roleless", password="x-1234567890")
    client.force_login(roleless)
    assert client.get("/contacts/").status_code == 403
    assert client.get("/companies/").status_code == 403
    assert client.get("/contacts/export.csv").status_code == 403


def test_anonymous_users_are_sent_to_login(client):
    response = client.get("/contacts/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
