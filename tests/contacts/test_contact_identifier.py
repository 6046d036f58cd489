"""Issue 19.4: an empty contact form saved "Visitor #206". A contact needs a name, an email or a
phone number, in the form, the quick-add modal, the API and CSV imports alike (one service rule)."""

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from contacts import services
from contacts.models import Contact, ImportRowError
from contacts.services import importing
from tests.factories import make_contact

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
MESSAGE = "A contact needs a name, an email or a phone number."


def test_the_empty_contact_form_is_refused_with_a_form_error(sales_client):
    response = sales_client.post("/contacts/new/", {"lifecycle_stage": "lead", "title": "  ", "tags": "vip"})
    assert response.status_code == 422
    html = response.content.decode()
    assert 'data-testid="form-errors"' in html and MESSAGE in html
    assert not Contact.objects.exists()


def test_the_empty_quick_add_modal_is_refused_in_place(sales_client):
    response = sales_client.post(
        "/contacts/quick-add/", {"lifecycle_stage": "lead", "first_name": " "}, **HTMX
    )
    assert response.status_code == 422
    assert MESSAGE in response.content.decode() and "<html" not in response.content.decode()
    assert not Contact.objects.exists()


def test_a_phone_alone_is_enough_and_names_the_contact(sales_client):
    response = sales_client.post("/contacts/new/", {"lifecycle_stage": "lead", "phone": "+44 20 7946 0000"})
    assert response.status_code == 302
    # the person is shown by their number, not as "Visitor #n"
    assert str(Contact.objects.get()) == "+44 20 7946 0000"


def test_the_api_answers_400_with_a_json_body(client, sales_user):
    client.force_login(sales_user)
    response = client.post(
        "/api/v1/contacts/", {"title": "CTO", "tags": ["vip"]}, content_type="application/json"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid" and MESSAGE in str(body["fields"])
    assert not Contact.objects.exists()


def test_an_update_may_not_clear_the_last_identifier_but_may_edit_an_anonymous_visitor(client, sales_user):
    client.force_login(sales_user)
    ada = make_contact(email="ada@example.com", owner=sales_user)
    response = client.patch(f"/api/v1/contacts/{ada.pk}/", {"email": ""}, content_type="application/json")
    assert response.status_code == 400 and MESSAGE in str(response.json())
    ada.refresh_from_db()
    assert ada.email == "ada@example.com"
    # a tracked visitor has no name yet; changing its stage does not touch an identifier
    visitor = Contact.objects.create(is_identified=False)
    services.contact_update(contact=visitor, actor=None, lifecycle_stage="customer")
    visitor.refresh_from_db()
    assert visitor.lifecycle_stage == "customer"
    with pytest.raises(ValidationError, match="needs a name"):
        services.contact_create(actor=None, tags=["vip"])


def test_csv_import_rejects_a_row_without_name_email_or_phone(sales_user):
    job = importing.import_upload(
        actor=sales_user,
        uploaded=SimpleUploadedFile(
            "people.csv", b"Email,First Name,Title\nada@example.com,Ada,CEO\n,,CTO\n", "text/csv"
        ),
    )
    importing.import_start(
        job=job, actor=sales_user, mapping=job.mapping, dedupe="update", create_companies=False
    )
    assert importing.import_run(job_id=job.pk) is False
    job.refresh_from_db()
    assert (job.created_count, job.error_count) == (1, 1)
    error = ImportRowError.objects.get(job=job)
    assert error.row_number == 2 and MESSAGE in error.reason
    assert list(Contact.objects.values_list("email", flat=True)) == ["ada@example.com"]
