from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from identity.models import IdentityKind
from tests.factories import link_identity, make_contact, make_user, stored_contact_event

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(marketing_user):
    client = APIClient()
    client.force_authenticate(marketing_user)
    return client


def test_events_newest_first_as_stored_with_cursor_pages(api):
    ada = make_contact(first_name="Ada")
    t0 = timezone.now() - timedelta(days=1)
    stored = {"label": "<script>x</script>", "nested": {"list": [1, None, "two"]}}
    for i in range(5):
        stored_contact_event(
            ada,
            at=t0 + timedelta(minutes=i),
            type="track",
            name=f"E{i}",
            properties={**stored, "i": i},
            context={"page": {"path": "/p"}, "ip": "10.0.0.1"},
        )
    stored_contact_event(make_contact(first_name="Bob"), at=t0, type="track", name="Bob's")

    first = api.get(f"/api/v1/contacts/{ada.pk}/events/?limit=2")

    assert first.status_code == 200
    body = first.json()
    assert [e["event"] for e in body["results"]] == ["E4", "E3"]
    assert body["results"][0]["properties"] == {**stored, "i": 4}
    assert body["results"][0]["context"] == {"page": {"path": "/p"}, "ip": "10.0.0.1"}
    assert body["results"][0]["type"] == "track" and body["results"][0]["anonymous_id"] == "anon-1"
    names = [e["event"] for e in body["results"]]
    url = body["next"]
    while url:
        page = api.get(url).json()
        names += [e["event"] for e in page["results"]]
        url = page["next"]
    assert names == ["E4", "E3", "E2", "E1", "E0"]


def test_identities_of_the_person(api):
    ada = make_contact(first_name="Ada")
    link_identity(ada, kind=IdentityKind.USER_ID, value="u-1")
    link_identity(ada, kind=IdentityKind.ANONYMOUS_ID, value="anon-9")
    link_identity(make_contact(first_name="Bob"), kind=IdentityKind.USER_ID, value="u-2")
    body = api.get(f"/api/v1/contacts/{ada.pk}/identities/").json()
    assert [(i["kind"], i["value"]) for i in body["results"]] == [
        ("anonymous_id", "anon-9"),
        ("user_id", "u-1"),
    ]


@pytest.mark.parametrize("resource", ["events", "identities"])
def test_permissions_unknown_and_merged_contacts(resource):
    ada = make_contact(first_name="Ada")
    loser = make_contact(first_name="Old", merged_into=ada)
    client = APIClient()
    assert client.get(f"/api/v1/contacts/{ada.pk}/{resource}/").status_code == 401
    nobody = make_user(username="nobody")
    nobody.groups.clear()
    client.force_authenticate(nobody)
    forbidden = client.get(f"/api/v1/contacts/{ada.pk}/{resource}/")
    assert forbidden.status_code == 403 and forbidden.json()["code"] == "forbidden"
    for role in ("Admin", "Sales", "Marketing"):
        client.force_authenticate(make_user(role=role))
        assert client.get(f"/api/v1/contacts/{ada.pk}/{resource}/").status_code == 200
    missing = client.get(f"/api/v1/contacts/999999/{resource}/")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    moved = client.get(f"/api/v1/contacts/{loser.pk}/{resource}/?limit=5")
    assert moved.status_code == 308
    assert moved["Location"].endswith(f"/api/v1/contacts/{ada.pk}/{resource}/?limit=5")
    assert moved.json()["id"] == ada.pk


def test_event_list_query_count_does_not_grow_with_the_page(api, django_assert_max_num_queries):
    ada = make_contact(first_name="Ada")
    t0 = timezone.now() - timedelta(days=1)
    for i in range(40):
        stored_contact_event(ada, at=t0 + timedelta(seconds=i), type="track", name=f"E{i}")
    with django_assert_max_num_queries(4):
        response = api.get(f"/api/v1/contacts/{ada.pk}/events/?limit=40")
    assert len(response.json()["results"]) == 40
