"""Merge log page, detail, split button and /api/v1/identity/merges/."""

import pytest
from django.urls import reverse

from accounts import services as account_services
from contacts.models import Contact, ContactMerge
from contacts.services import merging as contact_merging
from tests.factories import identify_payload, make_contact, page_payload, send
from tests.identity.helpers import drain

pytestmark = pytest.mark.django_db


@pytest.fixture
def auto_merge(client, source):
    """The worker merged a visitor into a CRM contact."""
    crm = make_contact(email="rae@example.com", first_name="Rae")
    send(client, source, page_payload("/x", anonymous_id="r-browser", at=0))
    drain()
    send(client, source, identify_payload({"email": "rae@example.com"}, anonymous_id="r-browser", at=1))
    drain()
    return ContactMerge.objects.get(winner=crm)


def _client_for(client, user):
    client.force_login(user)
    return client


def test_every_role_reads_the_log_but_only_admins_see_the_split_button(
    client, auto_merge, marketing_user, admin_user, django_assert_max_num_queries
):
    other = make_contact(email="o1@example.com")
    contact_merging.contact_merge(
        winner=other, loser=make_contact(email="o2@example.com"), field_choices={}, actor=admin_user
    )
    _client_for(client, marketing_user)
    with django_assert_max_num_queries(12):
        response = client.get(reverse("identity:merge_list"))
    assert response.status_code == 200
    body = response.content.decode()
    assert body.count('data-testid="merge-row"') == 2
    assert "Same email address" in body and "identity worker" in body and "admin-user" in body
    filtered = client.get(reverse("identity:merge_list"), {"contact": auto_merge.winner_id}).content.decode()
    assert filtered.count('data-testid="merge-row"') == 1
    detail = client.get(reverse("identity:merge_detail", args=[auto_merge.pk])).content.decode()
    assert f"<code>{auto_merge.event_id}</code>" in detail
    assert "split-button" not in detail
    _client_for(client, admin_user)
    assert (
        "split-button" in client.get(reverse("identity:merge_detail", args=[auto_merge.pk])).content.decode()
    )


def test_the_split_button_splits_for_admins_only(client, auto_merge, admin_user, sales_user):
    url = reverse("identity:merge_split", args=[auto_merge.pk])
    _client_for(client, sales_user)
    assert client.post(url).status_code == 403
    assert client.get(url).status_code == 405
    _client_for(client, admin_user)
    response = client.post(url, follow=True)
    assert response.redirect_chain[-1][0] == reverse("identity:merge_detail", args=[auto_merge.pk])
    assert "is its own person again" in response.content.decode()
    assert Contact.objects.get(pk=auto_merge.loser_id).merged_into_id is None
    # a second split is refused with a message, and nothing changes
    again = client.post(url, follow=True).content.decode()
    assert "already split" in again


def test_csrf_is_required_to_split(auto_merge, admin_user):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.post(reverse("identity:merge_split", args=[auto_merge.pk])).status_code == 403
    assert ContactMerge.objects.get(pk=auto_merge.pk).split_at is None


def _api(client, user):
    token = account_services.api_token_create(user=user, name="t")[1]
    return {"HTTP_AUTHORIZATION": f"Token {token}"}


def test_api_lists_filters_and_splits(client, auto_merge, admin_user, sales_user):
    headers = _api(client, sales_user)
    listing = client.get("/api/v1/identity/merges/", {"contact": auto_merge.loser_id}, **headers).json()
    assert listing["count"] == 1
    (row,) = listing["results"]
    assert row["reason"] == "email" and row["event_id"] == auto_merge.event_id and row["split_at"] is None
    assert client.get("/api/v1/identity/merges/", {"contact": "x"}, **headers).json()["fields"]["contact"]
    split_url = f"/api/v1/identity/merges/{auto_merge.pk}/split/"
    refused = client.post(split_url, **headers)
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    admin = _api(client, admin_user)
    done = client.post(split_url, **admin)
    assert done.status_code == 200 and done.json()["split_at"]
    again = client.post(split_url, **admin)
    assert again.status_code == 409 and "already split" in again.json()["detail"]
    assert client.post("/api/v1/identity/merges/999999/split/", **admin).status_code == 404
    assert client.get("/api/v1/identity/merges/").status_code == 401
    root = client.get("/api/v1/", **admin).json()
    assert root["resources"]["identity_merges"].endswith("/api/v1/identity/merges/")
