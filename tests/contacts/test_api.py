import pytest
from django.urls import reverse

from accounts import services as account_services
from contacts.models import Company, Contact, CustomField
from tests.factories import make_company, make_contact, make_user

pytestmark = pytest.mark.django_db

CONTACTS = "/api/v1/contacts/"
COMPANIES = "/api/v1/companies/"
CONTACT_FIELDS = {
    "id",
    "email",
    "first_name",
    "last_name",
    "phone",
    "title",
    "company",
    "company_name",
    "owner",
    "lifecycle_stage",
    "is_identified",
    "tags",
    "traits",
    "custom_fields",
    "first_seen",
    "last_seen",
    "attribution",
    "consent",
    "created_at",
    "updated_at",
}
COMPANY_FIELDS = {
    "id",
    "name",
    "domain",
    "industry",
    "size",
    "owner",
    "custom_fields",
    "contact_count",
    "created_at",
    "updated_at",
}


@pytest.fixture
def api(client, sales_user):
    """A client signed in as the Sales rep, with JSON helpers."""
    client.force_login(sales_user)
    return as_json(client)


def as_json(client):
    client.post_json = lambda url, data: client.post(url, data, content_type="application/json")
    client.patch_json = lambda url, data: client.patch(url, data, content_type="application/json")
    return client


def contact_url(pk: int) -> str:
    return f"{CONTACTS}{pk}/"


def company_url(pk: int) -> str:
    return f"{COMPANIES}{pk}/"


# --- contacts


def test_create_a_contact_normalises_links_the_company_and_answers_201(api, sales_user):
    # given a company with the domain of the new contact's email
    acme = make_company(name="Acme Inc", domain="acme.com")
    # when a rep posts a contact with an email in capitals and messy tags
    response = api.post_json(
        CONTACTS,
        {"email": " Wile@ACME.com", "first_name": "Wile", "tags": ["Genius", " genius", "Coyote"]},
    )
    # then it is created in canonical form, linked to the company and owned by the rep
    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) == CONTACT_FIELDS
    assert body["email"] == "wile@acme.com"
    assert (body["company"], body["company_name"]) == (acme.pk, "Acme Inc")
    assert body["owner"] == sales_user.pk
    assert body["tags"] == ["coyote", "genius"]
    assert body["lifecycle_stage"] == "lead" and body["is_identified"] is True
    assert Contact.objects.get(pk=body["id"]).email == "wile@acme.com"


def test_create_with_a_token_and_no_company(client, sales_user):
    _, raw = account_services.api_token_create(user=sales_user)
    response = client.post(
        CONTACTS, {"first_name": "Ada"}, content_type="application/json", HTTP_AUTHORIZATION=f"Token {raw}"
    )
    assert response.status_code == 201
    assert (response.json()["company"], response.json()["company_name"]) == (None, None)


def test_invalid_input_is_400_naming_each_field(api):
    response = api.post_json(CONTACTS, {"email": "not-an-email", "tags": ["x" * 51], "first_name": "x" * 101})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert set(body["fields"]) == {"email", "tags", "first_name"}
    assert not Contact.objects.exists()


def test_shape_errors_are_400_naming_the_field(api):
    response = api.post_json(CONTACTS, {"company": 999_999, "lifecycle_stage": "nope", "tags": "vip"})
    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"company", "lifecycle_stage", "tags"}


def test_a_duplicate_email_is_409(api):
    # given a contact with an email
    existing = make_contact(email="ada@example.com")
    # when another contact is posted with the same email, in another case
    response = api.post_json(CONTACTS, {"email": "ADA@example.com"})
    # then the answer is 409, naming the field and the contact that has it
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "duplicate_email"
    assert f"contact {existing.pk}" in body["detail"]
    assert list(body["fields"]) == ["email"]


def test_get_patch_and_delete_a_contact(api, sales_user):
    acme = make_company(name="Acme", domain="acme.com")
    contact = make_contact(first_name="Wile", email="wile@acme.com", owner=sales_user)
    # read
    body = api.get(contact_url(contact.pk)).json()
    assert body["id"] == contact.pk and body["company"] == acme.pk
    # a PATCH changes only what it names; null unlinks the company
    response = api.patch_json(contact_url(contact.pk), {"title": "Genius", "company": None})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["title"], body["first_name"], body["company"], body["company_name"]) == (
        "Genius",
        "Wile",
        None,
        None,
    )
    # delete, then it is gone
    assert api.delete(contact_url(contact.pk)).status_code == 204
    response = api.get(contact_url(contact.pk))
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_a_merged_contacts_url_redirects_to_the_survivor(api, sales_user):
    # given a contact merged twice
    survivor = make_contact(first_name="Ada", email="ada@example.com", owner=sales_user)
    middle = make_contact(first_name="Ada", email="ada@old.example", merged_into=survivor)
    oldest = make_contact(first_name="A.", merged_into=middle)
    # when the oldest URL is read
    response = api.get(contact_url(oldest.pk))
    # then it redirects permanently, in one hop, to the surviving contact
    assert response.status_code == 308
    assert response["Location"] == f"http://testserver{contact_url(survivor.pk)}"
    assert response.json()["id"] == survivor.pk
    assert api.get(contact_url(oldest.pk), follow=True).json()["id"] == survivor.pk
    # and a PATCH to a tombstone changes nothing there: it is redirected too
    response = api.patch_json(contact_url(middle.pk), {"title": "CTO"})
    assert response.status_code == 308
    assert Contact.objects.get(pk=middle.pk).title == ""
    assert api.delete(contact_url(middle.pk)).status_code == 308
    assert Contact.objects.filter(pk=middle.pk).exists()


def test_list_is_paginated_with_a_count(api):
    for name in ["A", "B", "C"]:
        make_contact(first_name=name)
    body = api.get(CONTACTS, {"limit": 2}).json()
    assert body["count"] == 3
    assert [c["first_name"] for c in body["results"]] == ["C", "B"]
    assert body["next"] is not None
    body = api.get(body["next"]).json()
    assert [c["first_name"] for c in body["results"]] == ["A"]


def test_list_filters(api, sales_user):
    make_contact(first_name="Ada", email="ada@example.com", owner=sales_user, tags=["vip"])
    make_contact(first_name="Grace", lifecycle_stage="customer")
    make_contact(first_name="Anon", is_identified=False)

    def listed(**params):
        response = api.get(CONTACTS, params)
        assert response.status_code == 200, response.json()
        return sorted(c["first_name"] for c in response.json()["results"])

    assert listed() == ["Ada", "Grace"]
    assert listed(q="gra") == ["Grace"]
    assert listed(email="ADA@example.com") == ["Ada"]
    assert listed(owner="me") == ["Ada"]
    assert listed(owner="none") == ["Grace"]
    assert listed(owner=str(sales_user.pk)) == ["Ada"]
    assert listed(tag="VIP") == ["Ada"]
    assert listed(lifecycle_stage="customer") == ["Grace"]
    assert listed(include_anonymous="true") == ["Ada", "Anon", "Grace"]


def test_bad_filters_are_400_naming_the_field(api):
    response = api.get(CONTACTS, {"owner": "bob", "lifecycle_stage": "nope"})
    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"owner", "lifecycle_stage"}


def test_contact_list_query_count_does_not_grow_with_rows(api, django_assert_max_num_queries):
    # given many contacts, each with a company and an owner
    owners = [make_user(role="Sales", password=None) for _ in range(3)]
    for i in range(30):
        company = make_company(name=f"Company {i}", domain=f"c{i}.example")
        make_contact(email=f"p{i}@c{i}.example", owner=owners[i % 3], tags=["a", "b"])
        assert company.pk
    # when the list is read: session, user, roles, count, page; nothing per row
    with django_assert_max_num_queries(5):
        body = api.get(CONTACTS, {"limit": 30}).json()
    assert len(body["results"]) == 30
    assert all(c["company_name"] for c in body["results"])


def test_company_list_query_count_does_not_grow_with_rows(api, django_assert_max_num_queries):
    for i in range(20):
        make_company(name=f"Company {i:02}", domain=f"c{i}.example")
        make_contact(email=f"p{i}@c{i}.example")
    with django_assert_max_num_queries(5):
        body = api.get(COMPANIES).json()
    assert body["count"] == 20
    assert all(c["contact_count"] == 1 for c in body["results"])


# --- companies


def test_create_read_update_delete_a_company(api, sales_user):
    CustomField.objects.create(entity="company", key="tier", label="Tier", field_type="number")
    # when a rep creates a company with a URL for its domain
    response = api.post_json(
        COMPANIES, {"name": "Acme", "domain": "https://www.ACME.com/about", "custom_fields": {"tier": 1}}
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    # then the domain is stored bare, and the rep owns it
    assert set(body) == COMPANY_FIELDS
    assert (body["domain"], body["owner"], body["contact_count"]) == ("acme.com", sales_user.pk, 0)
    # and a contact created later at that domain joins it
    make_contact(email="wile@acme.com")
    assert api.get(company_url(body["id"])).json()["contact_count"] == 1
    response = api.patch_json(company_url(body["id"]), {"industry": "Anvils"})
    assert response.status_code == 200
    assert (response.json()["industry"], response.json()["contact_count"]) == ("Anvils", 1)
    assert api.delete(company_url(body["id"])).status_code == 204
    assert not Company.objects.exists()
    assert Contact.objects.get(email="wile@acme.com").company is None


def test_a_duplicate_domain_is_409_and_a_bad_one_400(api):
    make_company(name="Acme", domain="acme.com")
    response = api.post_json(COMPANIES, {"name": "Acme 2", "domain": "www.acme.com"})
    assert response.status_code == 409
    assert response.json()["code"] == "duplicate_domain"
    assert list(response.json()["fields"]) == ["domain"]
    response = api.post_json(COMPANIES, {"name": "", "domain": "not a domain"})
    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"name", "domain"}


def test_company_list_filters(api):
    make_company(name="Acme", domain="acme.com")
    make_company(name="Initech", domain="initech.com")
    results = api.get(COMPANIES, {"q": "init"}).json()["results"]
    assert [c["name"] for c in results] == ["Initech"]
    results = api.get(COMPANIES, {"domain": "http://www.acme.com"}).json()["results"]
    assert [c["name"] for c in results] == ["Acme"]


# --- who may do what

ROLES = ["admin", "sales_owner", "sales_other", "marketing"]
EXPECTED = {
    # role:        read, create, update, delete
    "admin": (200, 201, 200, 204),
    "sales_owner": (200, 201, 200, 204),
    "sales_other": (200, 201, 403, 403),
    "marketing": (200, 403, 403, 403),
}


@pytest.fixture
def people(admin_user, sales_user, marketing_user):
    return {
        "admin": admin_user,
        "sales_owner": sales_user,
        "sales_other": make_user(role="Sales", username="other-rep", password=None),
        "marketing": marketing_user,
    }


@pytest.mark.parametrize("resource", ["contacts", "companies"])
@pytest.mark.parametrize("role", ROLES)
def test_permission_matrix(client, people, role, resource):
    # given a record owned by one Sales rep
    owner = people["sales_owner"]
    if resource == "contacts":
        record = make_contact(first_name="Ada", email="ada@example.com", owner=owner)
        base, new = CONTACTS, {"first_name": "Grace"}
    else:
        record = make_company(name="Acme", domain="acme.com", owner=owner)
        base, new = COMPANIES, {"name": "Initech"}
    detail = f"{base}{record.pk}/"
    client.force_login(people[role])
    api = as_json(client)
    read, create, update, delete = EXPECTED[role]
    # when the role reads, creates, updates and deletes, then each answer is as the rules say
    assert api.get(base).status_code == read
    assert api.get(detail).status_code == read
    assert api.post_json(base, new).status_code == create
    response = api.patch_json(detail, {"title": "CTO"} if resource == "contacts" else {"industry": "X"})
    assert response.status_code == update
    if update == 403:
        assert response.json()["code"] == "forbidden"
    assert api.delete(detail).status_code == delete
    model = Contact if resource == "contacts" else Company
    assert model.objects.filter(pk=record.pk).exists() == (delete != 204)


@pytest.mark.parametrize("resource", ["contacts", "companies"])
def test_sales_may_claim_an_unowned_record(client, people, resource):
    record = make_contact(first_name="Pool") if resource == "contacts" else make_company(name="Pool Inc")
    rep = people["sales_other"]
    client.force_login(rep)
    response = as_json(client).patch_json(f"/api/v1/{resource}/{record.pk}/", {"owner": rep.pk})
    assert response.status_code == 200
    assert response.json()["owner"] == rep.pk


def test_anonymous_callers_get_401(client):
    contact = make_contact(first_name="Ada")
    assert client.get(CONTACTS).status_code == 401
    assert client.get(contact_url(contact.pk)).status_code == 401


# --- discovery


def test_api_root_and_schema_list_the_resources(api):
    resources = api.get(reverse("api-root")).json()["resources"]
    assert resources["contacts"].endswith(CONTACTS)
    assert resources["companies"].endswith(COMPANIES)
    spec = api.get("/api/schema/?format=json").json()
    for path in [CONTACTS, "/api/v1/contacts/{id}/", COMPANIES, "/api/v1/companies/{id}/"]:
        assert path in spec["paths"]
    assert "PaginatedContactList" in spec["components"]["schemas"]
