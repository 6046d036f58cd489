"""The Events page: live list with filters and polling, rejected events, dead letters, counts."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from events import selectors, services
from events.ingest.parse import Rejection
from events.models import Event, IngestQueue, Source
from events.services import queue
from tests.factories import store_messages


@pytest.fixture
def web(db):
    return Source.objects.create(name="Website")


@pytest.fixture
def app_source(db):
    return Source.objects.create(name="Mobile app", kind="mobile")


def _track_payload(name, **extra):
    return {"type": "track", "event": name, "userId": "u1", **extra}


def _shown_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-event-id="(\d+)"', html)]


def test_admin_sees_the_newest_events_first_with_their_json(admin_client, web, app_source):
    # given events from two sources
    first, second = store_messages(
        web, _track_payload("Signed Up"), {"type": "page", "anonymousId": "a1", "name": "Home"}
    )
    (third,) = store_messages(app_source, _track_payload("Order Completed", properties={"total": 42}))
    # when the Events page is opened
    response = admin_client.get(reverse("events:list"))
    # then all three are listed newest first, with the source names and each event's JSON
    html = response.content.decode()
    assert response.status_code == 200
    assert _shown_ids(html) == [third.pk, second.pk, first.pk]
    assert "Mobile app" in html and "Website" in html
    assert "&quot;total&quot;: 42" in html
    assert f"&quot;messageId&quot;: &quot;{third.message_id}&quot;" in html


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"type": "page"}, ["Home"]),
        ({"name": "order"}, ["Order Completed"]),
        ({"person": "anon-7"}, ["Home"]),
        ({"person": "u1"}, ["Order Completed", "Signed Up"]),
    ],
)
def test_filters_narrow_the_list(admin_client, web, app_source, params, expected):
    store_messages(
        web, _track_payload("Signed Up"), {"type": "page", "anonymousId": "anon-7", "name": "Home"}
    )
    store_messages(app_source, _track_payload("Order Completed"))
    response = admin_client.get(reverse("events:list"), params)
    shown = Event.objects.in_bulk(_shown_ids(response.content.decode()))
    assert [shown[i].event for i in _shown_ids(response.content.decode())] == expected


def test_the_source_filter(admin_client, web, app_source):
    store_messages(web, _track_payload("From web"))
    (from_app,) = store_messages(app_source, _track_payload("From app"))
    response = admin_client.get(reverse("events:list"), {"source": app_source.pk})
    assert _shown_ids(response.content.decode()) == [from_app.pk]


def test_event_data_is_escaped_everywhere(admin_client, web):
    # given an event whose name, ids and properties carry script payloads
    store_messages(
        web,
        _track_payload(
            "<script>alert('name')</script>",
            userId='"><img src=x onerror=alert(1)>',
            properties={"html": "<script>alert(1)</script>", "attr": '"><img src=x onerror=alert(2)>'},
            context={"page": {"title": "</pre><script>alert(3)</script>"}},
        ),
    )
    # when the Events page renders it
    html = admin_client.get(reverse("events:list")).content.decode()
    # then no payload survives as markup; each appears escaped
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    assert "</pre><script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in html
    assert "&lt;script&gt;alert(&#x27;name&#x27;)&lt;/script&gt;" in html


def test_the_poll_returns_only_newer_rows_and_moves_the_cursor(admin_client, web):
    # given a page showing two events
    older = store_messages(web, _track_payload("Old one"), _track_payload("Old two"))
    newest_shown = older[-1].pk
    # when the poll asks for events after the newest shown, and one more has arrived
    (newer,) = store_messages(web, _track_payload("Fresh"))
    response = admin_client.get(
        reverse("events:list"), {"after": newest_shown, "type": "track"}, headers={"HX-Request": "true"}
    )
    # then only the new row comes back, with the poller (out of band) pointing past it, filters kept
    html = response.content.decode()
    assert response.status_code == 200
    assert _shown_ids(html) == [newer.pk]
    assert "Old one" not in html and "<html" not in html
    assert 'hx-swap-oob="true"' in html
    assert f"type=track&amp;after={newer.pk}" in html


def test_the_poll_answers_204_when_nothing_is_new(admin_client, web):
    (event,) = store_messages(web, _track_payload("Only"))
    response = admin_client.get(reverse("events:list"), {"after": event.pk}, headers={"HX-Request": "true"})
    assert response.status_code == 204 and response.content == b""


def test_the_full_page_polls_every_two_seconds_with_a_pause_button(admin_client, web):
    (event,) = store_messages(web, _track_payload("Only"))
    html = admin_client.get(reverse("events:list")).content.decode()
    assert 'hx-trigger="every 2s"' in html
    assert f'after={event.pk}"' in html
    assert 'id="live-toggle"' in html and 'aria-pressed="false"' in html
    assert "vendor/chart.umd.min.js" in html


def test_marketing_may_look_and_sales_may_not(client, web, marketing_user, sales_user):
    store_messages(web, _track_payload("Seen by marketing"))
    client.force_login(marketing_user)
    assert "Seen by marketing" in client.get(reverse("events:list")).content.decode()
    assert client.get(reverse("events:rejected")).status_code == 200
    assert client.get(reverse("events:dead_letters")).status_code == 200
    client.force_login(sales_user)
    for name in ("events:list", "events:rejected", "events:dead_letters"):
        response = client.get(reverse(name))
        assert response.status_code == 403
        assert b"Seen by marketing" not in response.content


def test_the_list_partial_costs_the_same_queries_for_5_or_50_events(
    admin_client, web, app_source, django_assert_max_num_queries
):
    store_messages(web, *[_track_payload(f"Web {i}") for i in range(3)])
    store_messages(app_source, *[_track_payload(f"App {i}") for i in range(2)])
    with django_assert_max_num_queries(4):
        small = admin_client.get(reverse("events:list"), {"type": "track"}, headers={"HX-Request": "true"})
    store_messages(web, *[_track_payload(f"More {i}") for i in range(45)])
    with django_assert_max_num_queries(4):
        large = admin_client.get(reverse("events:list"), {"type": "track"}, headers={"HX-Request": "true"})
    assert len(_shown_ids(small.content.decode())) == 5
    assert len(_shown_ids(large.content.decode())) == 50
    assert "<html" not in large.content.decode()


def test_rejected_events_show_their_reason_and_escaped_payload(admin_client, web):
    now = datetime.now(UTC)
    services.events_store(
        source=web,
        messages=[],
        rejections=[Rejection("the event needs a userId or an anonymousId", {"event": "<b>bold</b>"})],
        received_at=now,
    )
    html = admin_client.get(reverse("events:rejected")).content.decode()
    assert "the event needs a userId or an anonymousId" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and "<b>bold</b>" not in html


def _dead(source, name="Poison"):
    (event,) = store_messages(source, _track_payload(name))
    # as a failed batch leaves it: out of its batch, in a queue row of its own, given up on
    services.ingest_batches_forget(event_ids=[event.pk])
    now = datetime.now(UTC)
    IngestQueue.objects.create(
        event=event,
        enqueued_at=now,
        dead_at=now,
        attempts=queue.MAX_ATTEMPTS,
        last_error="ValueError: <cannot> process",
    )
    return event


def test_dead_letters_list_with_their_last_error(admin_client, web):
    event = _dead(web)
    store_messages(web, _track_payload("Healthy"))  # queued, not dead: not listed
    html = admin_client.get(reverse("events:dead_letters")).content.decode()
    assert f'data-event-id="{event.pk}"' in html
    assert "ValueError: &lt;cannot&gt; process" in html
    assert "Healthy" not in html
    assert '<span class="badge text-bg-danger" data-testid="dead-count">1</span>' in html
    assert "Retry</button>" in html


def test_admin_retry_puts_a_dead_letter_back_in_the_queue(admin_client, web):
    event = _dead(web)
    response = admin_client.post(reverse("events:dead_letter_retry", args=[event.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("events:dead_letters")
    row = IngestQueue.objects.get(event_id=event.pk)
    assert (row.dead_at, row.attempts, row.last_error) == (None, 0, "")
    # retrying again is harmless and says so
    page = admin_client.post(reverse("events:dead_letter_retry", args=[event.pk]), follow=True)
    assert "is not dead-lettered any more" in page.content.decode()


def test_marketing_sees_dead_letters_but_may_not_retry(client, web, marketing_user):
    event = _dead(web)
    client.force_login(marketing_user)
    html = client.get(reverse("events:dead_letters")).content.decode()
    assert f'data-event-id="{event.pk}"' in html and "Retry</button>" not in html
    assert client.post(reverse("events:dead_letter_retry", args=[event.pk])).status_code == 403
    assert IngestQueue.objects.get(event_id=event.pk).dead_at is not None


def test_counts_per_minute_cover_the_last_hour_with_zeros(web, app_source):
    now = datetime(2026, 11, 25, 12, 30, 20, tzinfo=UTC)
    store_messages(web, _track_payload("a"), _track_payload("b"), received_at=now - timedelta(minutes=3))
    store_messages(app_source, _track_payload("c"), received_at=now - timedelta(minutes=3, seconds=10))
    store_messages(web, _track_payload("d"), received_at=now)
    store_messages(web, _track_payload("too old"), received_at=now - timedelta(minutes=61))
    counts = selectors.event_counts_per_minute(now=now)
    assert len(counts) == 60
    assert counts[-1] == (datetime(2026, 11, 25, 12, 30, tzinfo=UTC), 1)
    assert dict(counts)[datetime(2026, 11, 25, 12, 27, tzinfo=UTC)] == 3
    assert sum(n for _, n in counts) == 4
    only_app = selectors.event_counts_per_minute(now=now, source_id=app_source.pk)
    assert sum(n for _, n in only_app) == 1


def test_the_page_shows_the_counts_as_a_chart_and_as_numbers(admin_client, web):
    store_messages(web, _track_payload("a"), _track_payload("b"))
    html = admin_client.get(reverse("events:list")).content.decode()
    assert 'id="per-minute-chart"' in html and 'role="img"' in html
    assert "2 events in the last 60 minutes" in html
    assert 'id="per-minute-data"' in html
    table = html[html.index('data-testid="per-minute-table"') :]
    assert '<td class="text-end">2</td>' in table


def test_an_invalid_filter_value_is_ignored_and_the_poll_still_returns_rows_only(admin_client, web):
    (old,) = store_messages(web, _track_payload("Old"))
    (new,) = store_messages(web, _track_payload("New"))
    response = admin_client.get(
        reverse("events:list"), {"source": "999999", "after": old.pk}, headers={"HX-Request": "true"}
    )
    html = response.content.decode()
    assert _shown_ids(html) == [new.pk]
    assert 'id="event-list"' not in html
