"""Text Postgres cannot store (NUL, lone surrogates) reaching the CRM by every write path: a 4xx or
a rejected row naming the problem, never a 500 or a failed import batch. Found by probing what
Schemathesis cannot generate (free-form custom field values) and the service layer under the API."""

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts import services as account_services
from contacts import services as contact_services
from contacts.models import Company, Contact, ImportRowError
from contacts.services import importing
from tests.factories import make_admin, make_contact

pytestmark = pytest.mark.django_db

UNSTORABLE = ["a\x00b", "\ud800", "x\udfffy"]


@pytest.fixture
def token_headers():
    _, raw = account_services.api_token_create(user=make_admin(username="text-admin"))
    return {"Authorization": f"Token {raw}"}


@pytest.mark.parametrize("value", UNSTORABLE)
@pytest.mark.parametrize("field", ["first_name", "last_name", "title", "phone"])
def test_contact_services_refuse_unstorable_text(field, value):
    with pytest.raises(ValidationError):
        contact_services.contact_create(actor=None, **{field: value})
    contact = make_contact(first_name="Ada")
    with pytest.raises(ValidationError):
        contact_services.contact_update(contact=contact, actor=None, **{field: value})
    with pytest.raises(ValidationError):
        contact_services.contact_create(actor=None, first_name="Ada", tags=[value])
    assert Contact.objects.count() == 1


@pytest.mark.parametrize("value", UNSTORABLE)
def test_company_services_refuse_unstorable_text(value):
    with pytest.raises(ValidationError):
        contact_services.company_create(actor=None, name=value)
    with pytest.raises(ValidationError):
        contact_services.company_create(actor=None, name="Acme", industry=value)
    assert not Company.objects.exists()


@pytest.mark.parametrize("escaped", ["a\\u0000b", "\\ud800", "x\\udfffy"])
def test_an_api_custom_field_value_postgres_cannot_store_is_a_400(client, token_headers, escaped):
    contact_services.custom_field_create(actor=None, entity="contact", label="Bio", field_type="text")
    contact = make_contact(first_name="Ada", custom_fields={"bio": "before"})
    body = '{"custom_fields": {"bio": "' + escaped + '"}}'
    response = client.generic(
        "PATCH", f"/api/v1/contacts/{contact.pk}/", body, "application/json", headers=token_headers
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid" and "bio" in str(response.json()["fields"])
    contact.refresh_from_db()
    assert contact.custom_fields == {"bio": "before"}


def test_global_search_for_a_nul_is_an_ordinary_search(client):
    client.force_login(make_admin(username="searcher"))
    make_contact(first_name="Ada", last_name="Lovelace")
    response = client.get("/search/", {"q": "Love\x00lace"})
    assert response.status_code == 200 and "Ada Lovelace" in response.content.decode()


def test_an_import_row_with_a_nul_is_rejected_with_a_reason_and_the_rest_imported(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    admin = make_admin(username="importer")
    data = b"email,first_name\nok@x.test,Ada\nbad@x.test,Gr\x00ace\nalso@x.test,Linus\n"
    job = importing.import_upload(actor=admin, uploaded=SimpleUploadedFile("p.csv", data, "text/csv"))
    importing.import_start(
        job=job,
        actor=admin,
        mapping={"0": "email", "1": "first_name"},
        dedupe="update",
        create_companies=False,
    )
    assert importing.import_run(job_id=job.pk) is False
    assert sorted(Contact.objects.values_list("email", flat=True)) == ["also@x.test", "ok@x.test"]
    error = ImportRowError.objects.get(job=job)
    assert error.row_number == 2 and "Null characters" in error.reason


def test_an_upload_whose_header_holds_a_nul_is_stored_readably(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    admin = make_admin(username="uploader")
    data = b"email,first\x00name\nok@x.test,Ada\n"
    job = importing.import_upload(actor=admin, uploaded=SimpleUploadedFile("p\x00.csv", data, "text/csv"))
    job.refresh_from_db()
    assert job.headers == ["email", "first\ufffdname"]


HOSTILE_QUERY_VALUES = [
    "\x00",
    "%ED%A0%80",
    "9" * 5000,
    "9" * 25,
    "-1",
    "1e400",
    "' OR 1=1 --",
    "<script>",
    "[]",
    # digits str.isdigit() takes: int() refuses the first and the last, reads "١٢" as 12
    "²",
    "١٢",
    "①",
]
QUERY_PARAMS = [
    "q",
    "cursor",
    "sort",
    "owner",
    "tag",
    "lifecycle_stage",
    "company",
    "pipeline",
    "stage",
    "offset",
    "limit",
    "from",
    "edit",
    "cancel",
    "close_from",
    "close_to",
    "amount_min",
    "amount_max",
    "created_from",
    "created_to",
    "seen_from",
    "seen_to",
    "show_done",
    "type",
    "name",
    "source",
    "user",
    "anon",
    "assignee",
    "status",
    "v",
    "kind",
    "deals",
    "contact",
    "winner",
    "loser",
]


@pytest.mark.django_db(transaction=True)  # a database error must not poison the later requests
@pytest.mark.parametrize("raw", HOSTILE_QUERY_VALUES)
def test_no_page_answers_5xx_to_hostile_query_parameters(client, raw):
    """Every page and API read of the permission matrix, as an Admin, with every filter parameter the
    views read set to a hostile value: the answer is a page, a JSON answer or a 4xx, never a 5xx."""
    from urllib.parse import quote

    from django.urls import reverse

    from tests.trust.test_permission_matrix import CASES, World

    world = World()
    client.force_login(world.users["admin"])
    client.raise_request_exception = False
    value = raw if raw.startswith("%") else quote(raw)
    query = "&".join(f"{name}={value}" for name in QUERY_PARAMS)
    failures = []
    for case in CASES:
        if case.method != "GET":
            continue
        url = reverse(case.name, kwargs=case.kwargs(world))
        headers = {"Authorization": f"Token {world.api_tokens['admin']}"} if case.api else {}
        response = client.get(f"{url}?{query}", headers=headers)
        if response.status_code >= 500:
            failures.append((url, response.status_code))
    assert failures == []


HOSTILE_FORM_VALUES = [
    *["\x00", "\ud800", "9" * 5000, "9" * 25, "-1", "1e400", "NaN", "", "   ", "x" * 20_000],
    *["²", "١٢", "①"],  # str.isdigit() is true of each; int() refuses two and reads "١٢" as 12
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("raw", HOSTILE_FORM_VALUES, ids=lambda v: repr(v[:12]))
def test_no_write_answers_5xx_to_hostile_field_values(client, raw):
    """Every write of the permission matrix, as an Admin, with each of its fields set to a hostile
    value (forms and JSON bodies): a success, a redirect or a 4xx, never a 5xx."""
    import json

    from django.urls import reverse

    from tests.trust.test_permission_matrix import CASES, World

    world = World()
    client.force_login(world.users["admin"])
    client.raise_request_exception = False
    token = {"Authorization": f"Token {world.api_tokens['admin']}"}
    failures = []
    for case in CASES:
        if case.method == "GET":
            continue
        url = reverse(case.name, kwargs=case.kwargs(world))
        data = {key: raw for key in case.data(world)}
        if case.api:
            body = json.dumps(data)  # lone surrogates travel as \\ud800 escapes, as a client sends them
            response = client.generic(case.method, url, body, "application/json", headers=token)
        else:
            if "\ud800" in raw:
                continue  # a form post cannot carry a lone surrogate (it is not UTF-8 encodable)
            response = client.post(url, data, headers=case.headers)
        if response.status_code >= 500:
            failures.append((case.method, url, sorted(data), response.status_code))
    assert failures == []
