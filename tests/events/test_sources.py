"""Settings → Sources: pages, permissions, services, the create_source command and the REST API."""

import json
import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from events import services, tracking
from events.forms import normalise_origin
from events.models import Event, Source
from tests.factories import make_user


def _post_track(client, write_key: str, **extra):
    message = {"type": "track", "event": "Signed Up", "anonymousId": "a1", "messageId": uuid.uuid4().hex}
    return client.post(
        "/v1/t", json.dumps({**message, "writeKey": write_key, **extra}), content_type="text/plain"
    )


def _old_event(*, source: Source, hours: int) -> Event:
    # Events are append-only; an old one is inserted as such rather than updated.
    at = timezone.now() - timedelta(hours=hours)
    return Event.objects.create(
        source=source, message_id=uuid.uuid4().hex, type="track", event="Old", timestamp=at, received_at=at
    )


# --- list


def test_list_shows_each_source_with_its_events_of_the_last_24_hours(
    admin_client, django_assert_max_num_queries
):
    # given two sources, one with 2 recent events and 1 from two days ago, one with none
    shop = services.source_create(actor=None, name="Shop", kind="web")
    services.source_create(actor=None, name="Backend", kind="server", enabled=False)
    _old_event(source=shop, hours=48)
    for _ in range(2):
        assert _post_track(admin_client, shop.write_key).status_code == 200
    # when an admin opens the list (a fixed number of queries however many sources)
    with django_assert_max_num_queries(6):
        response = admin_client.get(reverse("events:sources"))
    # then both are listed by name with kind, status and the 24 h count
    html = response.content.decode()
    assert response.status_code == 200
    rows = list(response.context["sources"])
    assert [(s.name, s.kind, s.enabled, s.recent_events) for s in rows] == [
        ("Backend", "server", False, 0),
        ("Shop", "web", True, 2),
    ]
    assert "Server" in html and "Website" in html and "disabled" in html
    assert reverse("events:source_create") in html


def test_list_query_count_does_not_grow_with_sources(admin_client, django_assert_max_num_queries):
    for n in range(15):
        services.source_create(actor=None, name=f"Site {n}")
    with django_assert_max_num_queries(6):
        response = admin_client.get(reverse("events:sources"))
    assert response.content.decode().count('data-testid="source-row"') == 15


def test_sales_sees_sources_but_no_keys_and_cannot_change_them(sales_client):
    # given a source
    source = services.source_create(actor=None, name="Shop")
    # when a sales rep looks at the list and the source page
    listing = sales_client.get(reverse("events:sources")).content.decode()
    detail = sales_client.get(reverse("events:source_detail", args=[source.pk]))
    # then they see the source but neither its key nor its snippet, nor any way to change it
    assert "Shop" in listing and reverse("events:source_create") not in listing
    assert detail.status_code == 200
    assert source.write_key not in detail.content.decode()
    assert "snippet" not in detail.context
    assert reverse("events:source_edit", args=[source.pk]) not in detail.content.decode()
    # and every write answers 403 and changes nothing
    assert sales_client.get(reverse("events:source_create")).status_code == 403
    assert sales_client.post(reverse("events:source_create"), {"name": "X", "kind": "web"}).status_code == 403
    edit = sales_client.post(
        reverse("events:source_edit", args=[source.pk]), {"name": "Hacked", "kind": "web"}
    )
    assert edit.status_code == 403
    assert sales_client.post(reverse("events:source_rotate_key", args=[source.pk])).status_code == 403
    source.refresh_from_db()
    assert (source.name, Source.objects.count()) == ("Shop", 1)
    assert Source.objects.get().write_key == source.write_key


def test_a_user_without_a_role_sees_no_sources(client, db):
    source = services.source_create(actor=None, name="Shop")
    nobody = make_user(username="nobody")
    nobody.groups.clear()
    client.force_login(nobody)
    assert client.get(reverse("events:sources")).status_code == 403
    assert client.get(reverse("events:source_detail", args=[source.pk])).status_code == 403
    assert client.get(reverse("events:source_status", args=[source.pk])).status_code == 403


# --- create / edit / rotate


def test_marketing_creates_a_source_with_normalised_origins(marketing_client):
    # when marketing submits the form with messy but valid origins
    response = marketing_client.post(
        reverse("events:source_create"),
        {
            "name": "  Web shop ",
            "kind": "web",
            "enabled": "on",
            "allowed_origins": "HTTPS://Shop.Example.com/\n\nhttp://localhost:8080\nhttps://shop.example.com:443",
        },
    )
    # then the source exists and the page shows its snippet
    source = Source.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("events:source_detail", args=[source.pk])
    assert (source.name, source.kind, source.enabled) == ("Web shop", "web", True)
    assert source.allowed_origins == ["https://shop.example.com", "http://localhost:8080"]
    detail = marketing_client.get(response["Location"]).content.decode()
    assert source.write_key in detail and "/js/cdp.js" in detail


def test_invalid_origins_are_refused_line_by_line(admin_client):
    response = admin_client.post(
        reverse("events:source_create"),
        {
            "name": "Shop",
            "kind": "web",
            "allowed_origins": "https://ok.example\nftp://x.example\nhttps://a.example/path",
        },
    )
    assert response.status_code == 400
    errors = response.context["form"].errors["allowed_origins"]
    assert errors == [
        "“ftp://x.example” must start with http:// or https://.",
        "“https://a.example/path” must be an origin only, without a path, query or fragment.",
    ]
    assert Source.objects.count() == 0


@pytest.mark.parametrize(
    ("raw", "origin"),
    [
        ("https://Example.COM", "https://example.com"),
        ("http://example.com:80/", "http://example.com"),
        ("https://example.com:8443", "https://example.com:8443"),
        ("http://[::1]:8000", "http://[::1]:8000"),
    ],
)
def test_origins_are_normalised_as_browsers_send_them(raw, origin):
    assert normalise_origin(raw) == origin


@pytest.mark.parametrize(
    "raw", ["example.com", "https://", "https://*.example.com", "https://u:p@example.com", "https://x.io?a=1"]
)
def test_non_origins_are_refused(raw):
    with pytest.raises(ValueError):
        normalise_origin(raw)


def test_editing_disables_the_source_and_its_key_stops_working_at_once(admin_client):
    # given a source that accepts events
    source = services.source_create(actor=None, name="Shop")
    assert _post_track(admin_client, source.write_key).status_code == 200
    # when an admin disables it and renames it
    response = admin_client.post(
        reverse("events:source_edit", args=[source.pk]), {"name": "Old shop", "kind": "mobile"}
    )
    # then it is saved, and its key is refused (this process's key cache was cleared)
    assert response.status_code == 302
    source.refresh_from_db()
    assert (source.name, source.kind, source.enabled) == ("Old shop", "mobile", False)
    refused = _post_track(admin_client, source.write_key)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_write_key"
    assert Event.objects.count() == 1


def test_edit_form_shows_current_values(admin_client):
    source = services.source_create(actor=None, name="Shop", allowed_origins=["https://a.example"])
    html = admin_client.get(reverse("events:source_edit", args=[source.pk])).content.decode()
    assert 'value="Shop"' in html and "https://a.example</textarea>" in html


def test_rotating_the_key_replaces_it_and_the_old_key_is_refused(admin_client):
    # given a source whose key is in use
    source = services.source_create(actor=None, name="Shop")
    old_key = source.write_key
    assert _post_track(admin_client, old_key).status_code == 200
    # when an admin rotates it
    response = admin_client.post(reverse("events:source_rotate_key", args=[source.pk]))
    # then the source has a new key, the old one gets 401 and the new one works
    source.refresh_from_db()
    assert response.status_code == 302 and source.write_key != old_key and len(source.write_key) >= 32
    assert _post_track(admin_client, old_key).status_code == 401
    assert _post_track(admin_client, source.write_key).status_code == 200
    assert Event.objects.count() == 2


def test_rotating_needs_post(admin_client):
    source = services.source_create(actor=None, name="Shop")
    assert admin_client.get(reverse("events:source_rotate_key", args=[source.pk])).status_code == 405
    assert Source.objects.get().write_key == source.write_key


def test_services_refuse_sales_and_blank_names(sales_user):
    from core.errors import DomainError, Forbidden

    with pytest.raises(Forbidden):
        services.source_create(actor=sales_user, name="Shop")
    with pytest.raises(DomainError, match="needs a name"):
        services.source_create(actor=None, name="   ")
    assert Source.objects.count() == 0


# --- the snippet and the test-event indicator


def test_source_page_shows_the_snippet_with_key_and_request_host(admin_client):
    source = services.source_create(actor=None, name="Shop")
    response = admin_client.get(reverse("events:source_detail", args=[source.pk]), HTTP_HOST="127.0.0.1:8000")
    snippet = response.context["snippet"]
    assert f'cdp.load("{source.write_key}",{{host:"http://127.0.0.1:8000"}})' in snippet
    assert '"http://127.0.0.1:8000")+"/js/cdp.js"' in snippet
    # rendered escaped inside <pre>, and htmx polls the indicator every 3 s
    html = response.content.decode()
    assert "&lt;script&gt;" in html and "<script>\n!function" not in html
    assert 'hx-trigger="every 3s"' in html
    assert reverse("events:source_status", args=[source.pk]) in html


def test_public_host_setting_overrides_the_request_host(admin_client, settings):
    settings.CDP_PUBLIC_HOST = "https://crm.example.com"
    source = services.source_create(actor=None, name="Shop")
    response = admin_client.get(reverse("events:source_detail", args=[source.pk]))
    assert '{host:"https://crm.example.com"}' in response.context["snippet"]


def test_snippet_values_cannot_break_out_of_the_script():
    text = tracking.snippet(write_key='k"</script><b>', host="https://h.example")
    assert "</script><b>" not in text and 'k\\"\\u003c/script\\u003e\\u003cb\\u003e' in text


def test_status_indicator_turns_green_with_the_newest_event_time(admin_client):
    # given a source without events: the indicator waits
    source = services.source_create(actor=None, name="Shop")
    url = reverse("events:source_status", args=[source.pk])
    waiting = admin_client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert 'data-received="false"' in waiting and "Waiting for a first event" in waiting
    assert "<html" not in waiting  # the partial only
    # when an event arrives
    assert _post_track(admin_client, source.write_key).status_code == 200
    # then the next poll shows it received, with the time of the newest event
    received = admin_client.get(url, headers={"HX-Request": "true"}).content.decode()
    newest = Event.objects.get().received_at
    assert 'data-received="true"' in received
    assert timezone.localtime(newest).strftime("%Y-%m-%d %H:%M:%S") in received
    assert 'hx-trigger="every 3s"' in received  # keeps polling


# --- create_source command


def test_create_source_prints_only_the_write_key(db):
    out = StringIO()
    call_command("create_source", "--name", "Backend", "--kind", "server", stdout=out)
    source = Source.objects.get()
    assert out.getvalue() == source.write_key + "\n"
    assert (source.name, source.kind, source.enabled) == ("Backend", "server", True)


def test_create_source_defaults_to_web(db):
    out = StringIO()
    call_command("create_source", "--name", "Site", stdout=out)
    assert Source.objects.get(write_key=out.getvalue().strip()).kind == "web"


# --- REST API


def test_api_lists_sources_with_keys_and_snippets(admin_client, django_assert_max_num_queries):
    a = services.source_create(actor=None, name="A site", allowed_origins=["https://a.example"])
    services.source_create(actor=None, name="B server", kind="server")
    with django_assert_max_num_queries(5):
        response = admin_client.get(reverse("api-sources"), HTTP_HOST="localhost:8000")
    body = response.json()
    assert response.status_code == 200 and body["count"] == 2
    first = body["results"][0]
    assert {k: first[k] for k in ("id", "name", "kind", "enabled", "write_key", "allowed_origins")} == {
        "id": a.pk,
        "name": "A site",
        "kind": "web",
        "enabled": True,
        "write_key": a.write_key,
        "allowed_origins": ["https://a.example"],
    }
    assert first["snippet"] == tracking.snippet(write_key=a.write_key, host="http://localhost:8000")
    assert [r["name"] for r in body["results"]] == ["A site", "B server"]


def test_api_refuses_sales_and_anonymous(client, sales_user):
    services.source_create(actor=None, name="Shop")
    assert client.get(reverse("api-sources")).status_code == 401
    client.force_login(sales_user)
    response = client.get(reverse("api-sources"))
    assert response.status_code == 403 and response.json()["code"] == "forbidden"


def test_api_root_lists_sources(admin_client):
    resources = admin_client.get(reverse("api-root")).json()["resources"]
    assert resources["sources"].endswith("/api/v1/sources/")
