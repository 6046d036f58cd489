from datetime import timedelta

import pytest
from django.utils import timezone

from identity.services import hot
from pipeline import services as pipeline_services
from tests.browser.test_contacts import log_in
from tests.factories import (
    add_rollup,
    default_hot_rule,
    make_contact,
    make_pipeline,
    make_user,
    stages_of,
    stored_contact_event,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PAYLOAD = "<img src=x onerror=window.__xss=1>"


def test_contact_web_activity_loads_and_deal_cards_show_signals(page, live_server):
    # given Rita's deal with Ada, who browsed the site before and after identifying
    default_hot_rule()
    rita = make_user(role="Sales", username="rita")
    now = timezone.now()
    ada = make_contact(first_name="Ada", last_name="Lovelace", owner=rita)
    ada.last_seen = now - timedelta(hours=2)
    ada.save(update_fields=["last_seen"])
    stored_contact_event(ada, at=now - timedelta(hours=3), path="/pricing")
    stored_contact_event(ada, at=now - timedelta(hours=2, minutes=50), path="/pricing/enterprise")
    stored_contact_event(
        ada, at=now - timedelta(hours=2), type="track", name="Clicked", properties={"label": PAYLOAD}
    )
    add_rollup(ada, day=timezone.localdate(now), key="/pricing", count=2)
    add_rollup(ada, day=timezone.localdate(now), key="/pricing/enterprise", count=1)
    stage = stages_of(make_pipeline())[0]
    deal = pipeline_services.deal_create(actor=rita, title="Acme pilot", stage=stage, contact=ada)
    pipeline_services.deal_create(actor=rita, title="Quiet deal", stage=stage)
    log_in(page, live_server, "rita")

    # when she opens Ada's page, the web activity panel loads lazily
    page.goto(f"{live_server.url}/contacts/{ada.pk}/")
    session = page.wait_for_selector("[data-testid=web-activity] [data-testid=session]")
    assert "/pricing" in session.inner_text() and "2 pages" in session.inner_text()
    # the events tab shows the hostile property as text, and it never ran
    page.click("[data-testid=tab-events]")
    page.click("[data-testid=web-activity] [data-testid=event] summary")
    assert PAYLOAD in page.inner_text("[data-testid=web-activity] [data-testid=event-properties]")
    # the timeline interleaves the session and the event with the deal's stage change
    page.wait_for_selector("[data-testid=timeline-feed] [data-testid=timeline-session]")
    assert page.locator("[data-testid=timeline-feed] [data-testid=timeline-stage-change]").count() == 1
    assert page.evaluate("window.__xss") is None

    # when she opens the board, the card's signals arrive in one request for all cards
    requests = []
    page.on("request", lambda r: requests.append(r.url) if "/deals/signals/" in r.url else None)
    page.goto(f"{live_server.url}/pipeline/")
    signal = page.wait_for_selector(f"#deal-signals-{deal.pk} [data-testid=signal-views]")
    assert signal.inner_text().strip() == "Viewed pricing 3\N{MULTIPLICATION SIGN} this week"
    assert "Last seen 2h ago" in page.inner_text(f"#deal-signals-{deal.pk}")
    page.wait_for_load_state("networkidle")
    assert len(requests) == 1

    # and when Ada turns hot, the bell counts the notification
    assert hot.hot_deals_notify(contact_ids=[ada.pk]) == 1
    page.goto(f"{live_server.url}/deals/{deal.pk}/")
    page.wait_for_selector("[data-testid=notification-bell] [data-testid=unread-count]")
    assert page.inner_text("[data-testid=unread-count]") == "1"
    page.wait_for_selector(f"#deal-signals-{deal.pk} .bi-fire")  # the deal page shows it hot


def test_bot_traffic_is_counted_and_shown_on_request_in_place(page, live_server):
    # given a person whose only page views came from a crawler, one with a hostile path and UTM
    rita = make_user(role="Sales", username="rita")
    now = timezone.now()
    ada = make_contact(first_name="Ada", owner=rita)
    stored_contact_event(ada, at=now - timedelta(hours=2), type="track", name="Signed Up")
    stored_contact_event(
        ada,
        at=now - timedelta(hours=1),
        path="/pricing/" + PAYLOAD,
        context={"campaign": {"source": PAYLOAD}},
        is_bot=True,
    )
    log_in(page, live_server, "rita")
    # when Rita opens the page, the panel says what it hides instead of contradicting itself
    page.goto(f"{live_server.url}/contacts/{ada.pk}/")
    notice = page.wait_for_selector("[data-testid=web-activity] [data-testid=bot-notice]")
    assert "1 bot event hidden" in notice.inner_text()
    assert page.locator("[data-testid=web-activity] [data-testid=no-sessions]").count() == 1
    # when she shows bot traffic, the panel swaps in place with the crawler's session, as text
    page.click("[data-testid=show-bots]")
    session = page.wait_for_selector("[data-testid=web-activity] [data-testid=session]")
    assert PAYLOAD in session.inner_text()
    assert page.url == f"{live_server.url}/contacts/{ada.pk}/"  # still the contact page
    assert "source=" + PAYLOAD in page.inner_text("[data-testid=session-utm]")
    # and hiding it again brings back the person's own view
    page.click("[data-testid=hide-bots]")
    page.wait_for_selector("[data-testid=web-activity] [data-testid=no-sessions]")
    assert page.evaluate("window.__xss") is None
