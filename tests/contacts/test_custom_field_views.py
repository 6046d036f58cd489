import pytest
from django.urls import reverse

from contacts.models import CustomField
from tests.factories import make_contact

pytestmark = pytest.mark.django_db


def test_admin_adds_a_choice_field_with_a_slug_key(admin_client):
    # when an Admin adds a field from the Settings page
    response = admin_client.post(
        reverse("contacts_tools:custom_fields"),
        {"entity": "contact", "label": "Plan Tier", "field_type": "choice", "choices": "Free\nPro\n\npro"},
    )
    # then it is stored with a key made from the label and de-duplicated choices
    assert response.status_code == 302
    field = CustomField.objects.get()
    assert (field.key, field.label, field.choices) == ("plan_tier", "Plan Tier", ["Free", "Pro"])
    page = admin_client.get(reverse("contacts_tools:custom_fields")).content.decode()
    assert "<code>plan_tier</code>" in page and "Free, Pro" in page


def test_keys_stay_unique_and_never_shadow_a_column(admin_client):
    # given a field labelled like a built-in column, twice
    for _ in range(2):
        admin_client.post(
            reverse("contacts_tools:custom_fields"),
            {"entity": "contact", "label": "Email", "field_type": "text"},
        )
    # then neither takes the column's name, and the second gets a suffix
    assert sorted(CustomField.objects.values_list("key", flat=True)) == ["email_custom", "email_custom_2"]


def test_choice_field_without_choices_is_refused_in_place(admin_client):
    response = admin_client.post(
        reverse("contacts_tools:custom_fields"),
        {"entity": "contact", "label": "Plan", "field_type": "choice", "choices": ""},
    )
    assert response.status_code == 400
    assert "needs at least one choice" in response.content.decode()
    assert not CustomField.objects.exists()


def test_edit_changes_label_choices_and_position_but_not_the_key(admin_client):
    field = CustomField.objects.create(
        entity="contact", key="plan", label="Plan", field_type="choice", choices=["Free"]
    )
    response = admin_client.post(
        reverse("contacts_tools:custom_field_edit", args=[field.pk]),
        {"label": "Pricing plan", "choices": "Free\nPro", "position": "7"},
    )
    assert response.status_code == 302
    field.refresh_from_db()
    assert (field.key, field.label, field.choices, field.position) == (
        "plan",
        "Pricing plan",
        ["Free", "Pro"],
        7,
    )


def test_delete_asks_first_and_keeps_stored_values(admin_client):
    # given a field with a value on a contact
    field = CustomField.objects.create(entity="contact", key="score", label="Score", field_type="number")
    contact = make_contact(email="ada@example.com", custom_fields={"score": 5})
    # when the Admin opens the delete page, then confirms
    confirm = admin_client.get(
        reverse("contacts_tools:custom_field_delete", args=[field.pk])
    ).content.decode()
    assert "no longer shown" in confirm and CustomField.objects.filter(pk=field.pk).exists()
    admin_client.post(reverse("contacts_tools:custom_field_delete", args=[field.pk]))
    # then the definition is gone and the value is still in the record's data
    assert not CustomField.objects.exists()
    contact.refresh_from_db()
    assert contact.custom_fields == {"score": 5}


@pytest.mark.parametrize("role_user", ["sales_user", "marketing_user"])
def test_only_admins_manage_custom_fields(client, request, role_user):
    client.force_login(request.getfixturevalue(role_user))
    field = CustomField.objects.create(entity="contact", key="score", label="Score", field_type="number")
    assert client.get(reverse("contacts_tools:custom_fields")).status_code == 403
    response = client.post(
        reverse("contacts_tools:custom_fields"), {"entity": "contact", "label": "X", "field_type": "text"}
    )
    assert response.status_code == 403
    assert client.post(reverse("contacts_tools:custom_field_delete", args=[field.pk])).status_code == 403
    assert list(CustomField.objects.values_list("key", flat=True)) == ["score"]


def test_settings_page_links_admins_to_custom_fields(admin_client, client, sales_user):
    assert (
        reverse("contacts_tools:custom_fields")
        in admin_client.get(reverse("accounts:settings")).content.decode()
    )
    client.force_login(sales_user)
    assert (
        reverse("contacts_tools:custom_fields")
        not in client.get(reverse("accounts:settings")).content.decode()
    )


def test_settings_links_importers_to_import_and_duplicates(client, sales_user, marketing_user):
    client.force_login(sales_user)
    html = client.get(reverse("accounts:settings")).content.decode()
    assert reverse("contacts_tools:import_upload") in html and reverse("contacts_tools:duplicates") in html
    client.force_login(marketing_user)
    html = client.get(reverse("accounts:settings")).content.decode()
    assert reverse("contacts_tools:import_upload") not in html
