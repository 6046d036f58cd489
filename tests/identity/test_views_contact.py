"""The contact page's identity slots: web activity panel and combined timeline."""

from datetime import timedelta

import pytest
from django.utils import timezone

from identity.models import IdentityKind
from pipeline.services import activities
from tests.factories import link_identity, make_contact, make_user, stored_contact_event

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
XSS = '<script>alert("x")</script>'


@pytest.fixture
def ada():
    contact = make_contact(first_name="Ada", email="ada@example.com")
    contact.attribution = {"utm_source": "newsletter", "landing_page": "/pricing", "referrer": XSS}
    contact.first_seen = timezone.now() - timedelta(days=5)
    contact.last_seen = timezone.now() - timedelta(hours=2)
    contact.save(update_fields=["attribution", "first_seen", "last_seen"])
    return contact


@pytest.fixture
def history(ada):
    """Ada's anonymous visit (before she identified), then an identify and a track call."""
    t0 = timezone.now() - timedelta(days=2)
    stored_contact_event(
        ada, at=t0, path="/pricing", properties={"path": "/pricing", "referrer": "https://news.example/"}
    )
    stored_contact_event(ada, at=t0 + timedelta(minutes=4), path="/docs/" + XSS)
    stored_contact_event(
        ada, at=t0 + timedelta(hours=1), type="identify", user_id="u-1", traits={"email": "ada@example.com"}
    )
    stored_contact_event(
        ada,
        at=t0 + timedelta(hours=1, minutes=1),
        type="track",
        name="Clicked " + XSS,
        properties={"label": XSS},
    )
    link_identity(ada, kind=IdentityKind.ANONYMOUS_ID, value="anon-1")
    link_identity(ada, kind=IdentityKind.EMAIL, value="ada@example.com")
    return t0


def test_web_activity_panel_shows_sessions_events_identities_and_attribution(marketing_client, ada, history):
    response = marketing_client.get(f"/contacts/{ada.pk}/web-activity/", **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    # one session of two pages, landing on /pricing from the newsletter link
    assert html.count('data-testid="session"') == 1
    assert "2 pages" in html and "https://news.example/" in html
    # every event, the anonymous ones included, newest first, with properties
    assert html.count('data-testid="event"') == 4
    events = html.split('data-testid="events"')[1]
    assert events.index("Clicked") < events.index("identify") < events.index(">/pricing</span>")
    # identities and first-touch attribution
    assert html.count('data-testid="identity"') == 2 and "anon-1" in html
    assert 'data-testid="attribution-utm_source">newsletter<' in html


def test_hostile_event_data_is_escaped_everywhere(marketing_client, ada, history):
    for url in (f"/contacts/{ada.pk}/web-activity/", f"/contacts/{ada.pk}/timeline/"):
        html = marketing_client.get(url, **HTMX).content.decode()
        assert "<script>" not in html, url
        assert "&lt;script&gt;" in html, url


def test_event_rows_page_with_load_more(marketing_client, ada):
    t0 = timezone.now() - timedelta(days=1)
    for i in range(30):
        stored_contact_event(ada, at=t0 + timedelta(seconds=i), type="track", name=f"Event {i:02d}")
    html = marketing_client.get(f"/contacts/{ada.pk}/web-activity/", **HTMX).content.decode()
    assert html.count('data-testid="event"') == 25 and "Event 29" in html and "Event 04" not in html
    more_url = html.split('data-testid="more-events"')[0].rsplit('hx-get="', 1)[1].split('"')[0]
    more = marketing_client.get(more_url.replace("&amp;", "&"), **HTMX).content.decode()
    assert more.count('data-testid="event"') == 5 and "Event 04" in more and "Event 05" not in more
    assert 'data-testid="more-events"' not in more


def test_older_sessions_load_by_start_time(marketing_client, ada):
    t0 = timezone.now() - timedelta(days=20)
    for day in range(12):
        stored_contact_event(ada, at=t0 + timedelta(days=day, microseconds=123), path=f"/day{day}")
    html = marketing_client.get(f"/contacts/{ada.pk}/web-activity/", **HTMX).content.decode()
    assert html.count('data-testid="session"') == 10
    more_url = html.split('data-testid="more-sessions"')[0].rsplit('hx-get="', 1)[1].split('"')[0]
    more = marketing_client.get(more_url, **HTMX).content.decode()
    assert more.count('data-testid="session"') == 2 and "/day1<" in more and "/day0<" in more
    assert (
        marketing_client.get(f"/contacts/{ada.pk}/web-activity/sessions/?before=yesterday").status_code == 400
    )


def test_timeline_interleaves_notes_with_web_activity(client, ada, history):
    rep = make_user(role="Sales", username="rep")
    note = activities.activity_log(
        actor=rep,
        kind="note",
        body="Asked about SSO",
        contact=ada,
        occurred_at=history + timedelta(minutes=30),
    )
    client.force_login(rep)
    html = client.get(f"/contacts/{ada.pk}/timeline/", **HTMX).content.decode()
    # the composer is pipeline's panel, without its own feed
    assert f'hx-get="/contacts/{ada.pk}/activities/?feed=0"' in html
    # newest first: the track event, the identify, the note (during the visit), the session
    order = [
        html.index(marker)
        for marker in ('data-testid="timeline-event"', "Asked about SSO", 'data-testid="timeline-session"')
    ]
    assert order == sorted(order)
    assert html.count('data-testid="timeline-event"') == 2
    # the author may edit her note in place
    assert f'hx-get="/activities/{note.pk}/edit/"' in html


def test_activities_panel_without_feed_keeps_its_composer_posting_feedless(client, ada):
    rep = make_user(role="Sales", username="rep")
    client.force_login(rep)
    html = client.get(f"/contacts/{ada.pk}/activities/?feed=0", **HTMX).content.decode()
    assert 'data-testid="activity-composer"' in html and 'data-testid="activity-feed"' not in html
    assert f'hx-post="/contacts/{ada.pk}/activities/log/?feed=0"' in html
    posted = client.post(f"/contacts/{ada.pk}/activities/log/?feed=0", {"kind": "note", "body": "hi"}, **HTMX)
    assert posted.status_code == 200 and 'data-testid="activity-feed"' not in posted.content.decode()
    # and the timeline's first page (what the post refreshes) shows the new note
    feed = client.get(f"/contacts/{ada.pk}/timeline/?part=feed", **HTMX).content.decode()
    assert ">hi<" in feed and 'data-testid="activity-composer"' not in feed


def test_timeline_loads_older_items_by_cursor(marketing_client, ada):
    t0 = timezone.now() - timedelta(days=40)
    for i in range(25):
        stored_contact_event(ada, at=t0 + timedelta(hours=i), type="track", name=f"Track {i:02d}")
    first = marketing_client.get(f"/contacts/{ada.pk}/timeline/", **HTMX).content.decode()
    assert first.count('data-testid="timeline-event"') == 20
    more_url = first.split('data-testid="timeline-more"')[0].rsplit('hx-get="', 1)[1].split('"')[0]
    older = marketing_client.get(more_url, **HTMX).content.decode()
    assert (
        older.count('data-testid="timeline-event"') == 5 and "Track 00" in older and "Track 05" not in older
    )
    assert 'data-testid="activity-composer"' not in older and "timeline-more" not in older


@pytest.mark.parametrize("path", ["web-activity/", "timeline/", "web-activity/events/"])
def test_unknown_contact_is_404_and_no_role_is_403(client, path):
    client.force_login(make_user(role="Sales", username="rep"))
    assert client.get(f"/contacts/999999/{path}").status_code == 404
    ada = make_contact(first_name="Ada")
    nobody = make_user(role="Sales", username="nobody")
    nobody.groups.clear()
    client.force_login(nobody)
    assert client.get(f"/contacts/{ada.pk}/{path}").status_code == 403
    client.logout()
    assert client.get(f"/contacts/{ada.pk}/{path}").status_code == 302  # to the login page


@pytest.mark.parametrize("role", ["Admin", "Sales", "Marketing"])
def test_every_crm_role_reads_web_activity(client, ada, history, role):
    client.force_login(make_user(role=role))
    for path in ("web-activity/", "timeline/"):
        assert client.get(f"/contacts/{ada.pk}/{path}", **HTMX).status_code == 200


def test_a_merged_contact_slot_follows_the_survivor(marketing_client, ada, history):
    loser = make_contact(first_name="Old", merged_into=ada)
    response = marketing_client.get(f"/contacts/{loser.pk}/web-activity/")
    assert response.status_code == 302 and response["Location"] == f"/contacts/{ada.pk}/web-activity/"
    response = marketing_client.get(f"/contacts/{loser.pk}/timeline/?part=feed")
    assert response["Location"] == f"/contacts/{ada.pk}/timeline/?part=feed"


def test_contact_page_lazy_loads_both_identity_slots_with_links(marketing_client, ada):
    html = marketing_client.get(f"/contacts/{ada.pk}/").content.decode()
    assert f'hx-get="/contacts/{ada.pk}/web-activity/" hx-trigger="load"' in html
    assert f'href="/contacts/{ada.pk}/web-activity/"' in html
    assert f'hx-get="/contacts/{ada.pk}/timeline/" hx-trigger="load"' in html


def test_panel_and_timeline_query_counts_do_not_grow_with_history(client, django_assert_max_num_queries):
    from pipeline import services as pipeline_services
    from tests.factories import make_pipeline, stages_of

    rep = make_user(role="Sales", username="rep")
    ada = make_contact(first_name="Ada")
    stages = stages_of(make_pipeline())
    t0 = timezone.now() - timedelta(days=30)
    for i in range(30):
        stored_contact_event(ada, at=t0 + timedelta(hours=i), path=f"/p{i}")
        stored_contact_event(ada, at=t0 + timedelta(hours=i, minutes=1), type="track", name=f"E{i}")
        activities.activity_log(
            actor=rep, kind="note", body=f"n{i}", contact=ada, occurred_at=t0 + timedelta(hours=i, minutes=2)
        )
    for i in range(5):
        deal = pipeline_services.deal_create(actor=rep, title=f"D{i}", stage=stages[0], contact=ada)
        pipeline_services.deal_move(deal=deal, to_stage=stages[1], actor=rep)
    link_identity(ada, kind=IdentityKind.USER_ID, value="u-1")
    client.force_login(rep)
    with django_assert_max_num_queries(10):  # one more than before: the hidden bot events' count
        assert client.get(f"/contacts/{ada.pk}/web-activity/", **HTMX).status_code == 200
    # +2 over the web-activity panel: the timeline's tasks created and tasks completed
    # one more than before: the page's stored events read apart, by id and received_at
    # one more: the contact's email links (settings.TIMELINE_SOURCE_HOOKS: mail)
    with django_assert_max_num_queries(13):
        assert client.get(f"/contacts/{ada.pk}/timeline/", **HTMX).status_code == 200


# --- bot traffic: hidden everywhere on the panel, counted, and shown on request


def _link(html: str, testid: str) -> str:
    url = html.split(f'data-testid="{testid}"')[0].rsplit('hx-get="', 1)[1].split('"')[0]
    return url.replace("&amp;", "&")


def test_bot_events_are_hidden_from_sessions_and_events_alike_and_counted(marketing_client, ada):
    # given a person's own track call, and a crawler's page views resolved to them
    t0 = timezone.now() - timedelta(hours=3)
    stored_contact_event(ada, at=t0, type="track", name="Signed Up")
    stored_contact_event(ada, at=t0 + timedelta(minutes=1), path="/pricing/" + XSS, is_bot=True)
    stored_contact_event(ada, at=t0 + timedelta(minutes=2), path="/docs", is_bot=True)
    # when the panel is opened
    html = marketing_client.get(f"/contacts/{ada.pk}/web-activity/", **HTMX).content.decode()
    # then neither sessions nor events show the bot's pages, and the panel says why
    assert 'data-testid="no-sessions"' in html
    assert html.count('data-testid="event"') == 1 and "Signed Up" in html and "/docs" not in html
    assert "2 bot events hidden" in html
    show = _link(html, "show-bots")
    assert show == f"/contacts/{ada.pk}/web-activity/?bots=1"
    assert f'href="/contacts/{ada.pk}/web-activity/?bots=1"' in html  # works without htmx too
    # when the person asks for bot traffic, both panels show it, marked, and escaped
    shown = marketing_client.get(show, **HTMX).content.decode()
    assert shown.count('data-testid="session"') == 1 and "2 pages" in shown
    assert shown.count('data-testid="event"') == 3 and shown.count('data-testid="bot-badge"') == 4
    assert "<script>" not in shown and "/pricing/&lt;script&gt;" in shown
    assert "Showing 2 bot events" in shown
    assert _link(shown, "hide-bots") == f"/contacts/{ada.pk}/web-activity/"


def test_load_more_keeps_the_bot_choice(marketing_client, ada):
    t0 = timezone.now() - timedelta(days=1)
    for i in range(30):
        stored_contact_event(
            ada, at=t0 + timedelta(seconds=i), type="track", name=f"Bot {i:02d}", is_bot=True
        )
    stored_contact_event(ada, at=t0 - timedelta(seconds=1), type="track", name="Human")
    html = marketing_client.get(f"/contacts/{ada.pk}/web-activity/?bots=1", **HTMX).content.decode()
    assert html.count('data-testid="event"') == 25
    more = marketing_client.get(_link(html, "more-events"), **HTMX).content.decode()
    assert more.count('data-testid="event"') == 6 and "Bot 00" in more and "Human" in more
    # without bots, the person's one event and no pager
    hidden = marketing_client.get(f"/contacts/{ada.pk}/web-activity/", **HTMX).content.decode()
    assert hidden.count('data-testid="event"') == 1 and 'data-testid="more-events"' not in hidden
    assert "30 bot events hidden" in hidden
    events = marketing_client.get(f"/contacts/{ada.pk}/web-activity/events/", **HTMX).content.decode()
    assert "Bot 00" not in events and "Human" in events


def test_first_touch_shows_when_it_happened_and_escapes_its_values(marketing_client, ada):
    touched = timezone.now().replace(microsecond=0) - timedelta(days=3)
    ada.attribution = {"utm_source": XSS, "utm_campaign": "q4", "touched_at": touched.isoformat()}
    ada.save(update_fields=["attribution"])
    html = marketing_client.get(f"/contacts/{ada.pk}/web-activity/", **HTMX).content.decode()
    assert f'data-testid="first-touch-at"><time datetime="{touched.isoformat()}"' in html
    assert 'data-testid="attribution-utm_source">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;<' in html
    assert "<script>" not in html
    assert 'data-testid="attribution-touched_at"' not in html  # the time is not shown as a tag
    assert 'data-testid="bot-notice"' not in html  # no bot events, nothing to say about them
