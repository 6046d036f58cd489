"""The tracking snippet in a real browser: a static site on one localhost port pastes the snippet
the Sources page shows, the app runs on another (pytest-django's live_server)."""

import json
import threading
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from events import services
from events.models import Event, RejectedEvent, Source
from tests.factories import make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DOWN = "**/v1/**"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@dataclass
class Site:
    root: Path
    url: str

    def publish(self, name: str, snippet: str, body: str = "") -> str:
        (self.root / name).write_text(
            f"<!doctype html><html><head><title>Pricing</title>\n{snippet}\n</head>"
            f"<body><h1>Our shop</h1>{body}</body></html>"
        )
        return f"{self.url}/{name}"


# Counts the page's sends to /v1/ as they start and as their answers arrive (or they fail), so a
# test can wait until everything the library sent has been answered: the server answers only
# after COMMIT, so what was sent is then in the database.
COUNT_SENDS = """
(() => {
  const fetch = window.fetch;
  window.__cdpSends = {started: 0, settled: 0};
  window.fetch = function (input, init) {
    const tracked = String(input && input.url || input).indexOf("/v1/") !== -1;
    if (tracked) window.__cdpSends.started += 1;
    const answer = fetch.apply(this, arguments);
    if (tracked) answer.finally(() => { window.__cdpSends.settled += 1; }).catch(() => {});
    return answer;
  };
})();
"""


@pytest.fixture
def site(tmp_path, page):
    """A tracked website: a static HTTP server in a thread, on a port of its own. The page's timers
    run on Playwright's clock (it flows as real time does until `settle` moves it on)."""
    page.clock.install()
    page.add_init_script(COUNT_SENDS)
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Site(root=tmp_path, url=f"http://127.0.0.1:{server.server_address[1]}")
    # Let the page's last sends land before the test database is flushed: an insert arriving
    # during the flush's TRUNCATE can deadlock with it. With the queue empty and every send
    # answered, leaving the page sends nothing more (its pagehide flush finds nothing queued).
    try:
        page.wait_for_function(
            "!Object.keys(localStorage).some(k => k.indexOf('cdp_queue:') === 0)", timeout=10_000
        )
        wait_for(page, lambda: sends_settled(page), what="the last sends answered")
        page.goto("about:blank")
    except Exception:
        page.goto("about:blank")
        page.wait_for_timeout(300)  # something was left to send: give the unload's send a moment
    server.shutdown()
    server.server_close()


@pytest.fixture
def source(db):
    return services.source_create(actor=None, name="Shop")


def snippet_from_sources_page(page, live_server, source: Source) -> str:
    """The snippet exactly as a marketer copies it from the source's page in the app."""
    client = Client()
    client.force_login(make_user(role="Marketing", username="mia"))
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    page.goto(live_server.url + reverse("events:source_detail", args=[source.pk]))
    text = page.locator("[data-testid=snippet]").text_content()
    assert source.write_key in text and live_server.url in text
    return text


def wait_for(page, predicate, *, timeout_ms: int = 15_000, what: str = "condition"):
    # page.wait_for_timeout, not time.sleep: it keeps Playwright's event loop turning.
    waited = 0
    while waited < timeout_ms:
        result = predicate()
        if result:
            return result
        page.wait_for_timeout(100)
        waited += 100
    raise AssertionError(f"timed out after {timeout_ms} ms waiting for {what}")


def sends_settled(page) -> bool:
    """True once every send the page started has been answered (or failed)."""
    return page.evaluate("!window.__cdpSends || __cdpSends.started === __cdpSends.settled")


def settle(page, ms: int) -> None:
    """Let `ms` of the page's time pass at once (firing the library's flush and retry timers due in
    it), then wait until every send they made has been answered."""
    page.clock.run_for(ms)
    wait_for(page, lambda: sends_settled(page), what="the page's sends answered")


def events_of(source: Source) -> list[Event]:
    return list(Event.objects.filter(source=source).order_by("id"))


def queued_names(page, source: Source) -> list[str]:
    raw = page.evaluate(f"localStorage.getItem({json.dumps('cdp_queue:' + source.write_key)})")
    return [item["m"].get("event") or item["m"]["type"] for item in json.loads(raw or "[]")]


def cookie(page, name: str) -> str | None:
    return next((c["value"] for c in page.context.cookies() if c["name"] == name), None)


def test_snippet_sends_page_identify_and_track_and_delivers_what_was_queued_while_down(
    page, live_server, site, source
):
    # given a site whose page pastes the snippet from the Sources page and calls identify and
    # track straight away (before cdp.js has loaded: the stub queues them)
    snippet = snippet_from_sources_page(page, live_server, source)
    url = site.publish(
        "index.html",
        snippet,
        '<script>cdp.identify("user-42", {email: "ada@example.com"});'
        'cdp.track("Viewed Pricing", {plan: "pro"});</script>',
    )
    # when a visitor opens it from a newsletter link
    page.goto(url + "?utm_source=newsletter&utm_campaign=spring")
    # then the page view, the identify and the track are stored, in order, by one anonymous id
    stored = wait_for(page, lambda: len(events_of(source)) >= 3 and events_of(source), what="3 events")
    assert [(e.type, e.event) for e in stored] == [
        ("page", ""),
        ("identify", ""),
        ("track", "Viewed Pricing"),
    ]
    anonymous_id = stored[0].anonymous_id
    assert anonymous_id and {e.anonymous_id for e in stored} == {anonymous_id}
    assert cookie(page, "ajs_anonymous_id") == anonymous_id
    assert page.evaluate("localStorage.getItem('ajs_anonymous_id')") == anonymous_id
    page_view, identify, track = stored
    assert page_view.context["page"]["path"] == "/index.html"
    assert page_view.context["page"]["title"] == "Pricing"
    assert page_view.context["page"]["search"] == "?utm_source=newsletter&utm_campaign=spring"
    assert page_view.context["campaign"] == {"source": "newsletter", "name": "spring"}
    assert page_view.context["library"]["name"] == "cdp.js"
    assert page_view.context["timezone"] and page_view.context["locale"]
    assert (identify.user_id, identify.traits) == ("user-42", {"email": "ada@example.com"})
    assert (track.user_id, track.properties) == ("user-42", {"plan": "pro"})
    assert len({e.message_id for e in stored}) == 3

    # when the app goes down, the visitor clicks, and reloads while it is still down
    page.route(DOWN, lambda route: route.abort("connectionrefused"))
    page.evaluate("cdp.track('Clicked Buy', {sku: 'A-1'})")
    wait_for(
        page,
        lambda: page.evaluate(f"!!localStorage.getItem('cdp_backoff:{source.write_key}')"),
        what="a failed send",
    )
    page.reload()
    # then the click survived the reload in the browser's queue, and nothing reached the app
    wait_for(page, lambda: "Clicked Buy" in queued_names(page, source), what="the queue after reload")
    assert not Event.objects.filter(event="Clicked Buy").exists()

    # when the app is back
    page.unroute(DOWN)
    # then the queued click is delivered exactly once, and the browser's queue empties
    wait_for(page, lambda: Event.objects.filter(event="Clicked Buy").exists(), what="the queued click")
    wait_for(page, lambda: queued_names(page, source) == [], what="an empty queue")
    settle(page, 1500)  # any duplicate send has been made and answered
    clicks = Event.objects.filter(event="Clicked Buy")
    assert clicks.count() == 1
    assert (clicks[0].anonymous_id, clicks[0].user_id) == (anonymous_id, "user-42")
    assert Event.objects.filter(source=source, type="page").count() == 2  # the reload's page view too


def test_reset_rotates_the_anonymous_id_and_forgets_the_user(page, live_server, site, source):
    # given a visitor who signed in on a tracked page
    url = site.publish("index.html", snippet_from_sources_page(page, live_server, source))
    page.goto(url)
    page.wait_for_function("window.cdp && window.cdp.initialized === true")
    page.evaluate("cdp.identify('user-1', {plan: 'pro'})")
    before = page.evaluate("cdp.user()")
    assert before["userId"] == "user-1" and cookie(page, "ajs_user_id") == "user-1"
    # when they sign out and the site calls reset(), then tracks something
    page.evaluate("cdp.reset(); cdp.track('Signed Out')")
    after = page.evaluate("cdp.user()")
    # then a new anonymous id is in the cookie and localStorage, and the user id is gone
    assert after["anonymousId"] != before["anonymousId"] and after["userId"] is None
    assert cookie(page, "ajs_anonymous_id") == after["anonymousId"]
    assert page.evaluate("localStorage.getItem('ajs_anonymous_id')") == after["anonymousId"]
    assert (
        cookie(page, "ajs_user_id") is None and page.evaluate("localStorage.getItem('ajs_user_id')") is None
    )
    # and the next event carries the new id only
    signed_out = wait_for(page, lambda: Event.objects.filter(event="Signed Out").first(), what="Signed Out")
    assert (signed_out.anonymous_id, signed_out.user_id) == (after["anonymousId"], "")
    # and identifying as someone else on the same browser rotates it too (shared devices)
    page.evaluate("cdp.identify('user-2')")
    assert page.evaluate("cdp.user().anonymousId") == after["anonymousId"]
    page.evaluate("cdp.identify('user-3')")
    assert page.evaluate("cdp.user().anonymousId") != after["anonymousId"]


def test_an_event_the_server_refuses_with_400_is_dropped_not_retried(page, live_server, site, source):
    # given a tracked page whose page view was delivered
    url = site.publish("index.html", snippet_from_sources_page(page, live_server, source))
    statuses = []
    page.on("response", lambda response: "/v1/b" in response.url and statuses.append(response.status))
    page.goto(url)
    wait_for(page, lambda: Event.objects.filter(source=source, type="page").exists(), what="the page view")
    wait_for(page, lambda: queued_names(page, source) == [], what="an empty queue")
    # when the site tracks an event the library's check lets through (20,000 characters) but the
    # server refuses (40 KB of UTF-8): alone in its batch, so the whole batch is rejected
    page.evaluate("cdp.track('Huge', {blob: '\u00e9'.repeat(20000)}); cdp.flush()")
    # then the server answers 400 and keeps the rejection, and the library drops the message
    # instead of backing off and sending it again
    wait_for(page, lambda: RejectedEvent.objects.filter(source=source).exists(), what="the rejection")
    wait_for(page, lambda: queued_names(page, source) == [], what="the refused message dropped")
    wait_for(page, lambda: statuses[-1:] == [400], what="the 400")
    assert page.evaluate(f"localStorage.getItem({json.dumps('cdp_backoff:' + source.write_key)})") is None
    # and the next event goes out as usual; the refused one was sent once
    page.evaluate("cdp.track('After'); cdp.flush()")
    wait_for(page, lambda: Event.objects.filter(source=source, event="After").exists(), what="the next event")
    wait_for(page, lambda: statuses[-1:] == [200], what="its 200")
    assert RejectedEvent.objects.filter(source=source).count() == 1 and statuses.count(400) == 1


def _privacy(source: Source, **settings) -> Source:
    values = {"require_consent": False, "honor_gpc": False, "retention_days": None, **settings}
    return services.source_privacy_update(actor=None, source=source, **values)


def test_consent_required_sends_and_stores_nothing_until_granted(page, live_server, site, source):
    # given a source set to require consent: the Sources page's snippet carries the option
    source = _privacy(source, require_consent=True)
    snippet = snippet_from_sources_page(page, live_server, source)
    assert 'consent:"required"' in snippet and "respectGPC" not in snippet
    sent = []
    page.on("request", lambda request: "/v1/" in request.url and sent.append(request.url))
    page.goto(site.publish("index.html", snippet, "<script>cdp.track('Viewed Pricing')</script>"))
    page.wait_for_function("window.cdp && window.cdp.initialized === true")
    # when the visitor has not answered the banner yet
    settle(page, 1500)  # more than the 1 s flush interval
    # then nothing was sent, and no identifier or event was written to the browser
    assert sent == [] and events_of(source) == []
    assert cookie(page, "ajs_anonymous_id") is None
    assert page.evaluate("Object.keys(localStorage)") == []
    # when they accept marketing but not analytics
    page.evaluate("cdp.consent({marketing: true, analytics: false}); cdp.track('After Consent')")
    # then the events held so far, and the new one, are sent under the id now stored in the
    # cookie, each carrying the consent state in Segment's shape
    stored = wait_for(page, lambda: len(events_of(source)) >= 3 and events_of(source), what="3 events")
    assert [(e.type, e.event) for e in stored] == [
        ("page", ""),
        ("track", "Viewed Pricing"),
        ("track", "After Consent"),
    ]
    assert {e.anonymous_id for e in stored} == {cookie(page, "ajs_anonymous_id")}
    for event in stored:
        assert event.context["consent"] == {"categoryPreferences": {"marketing": True, "analytics": False}}
        assert "gpc" not in event.context
    # when they withdraw consent, their identifiers are removed and nothing more is sent
    page.evaluate("cdp.consent(false); cdp.track('After Withdrawal')")
    assert cookie(page, "ajs_anonymous_id") is None
    settle(page, 1500)
    assert not Event.objects.filter(event="After Withdrawal").exists()
    # and a reload remembers the refusal
    page.reload()
    page.wait_for_function("window.cdp && window.cdp.initialized === true")
    settle(page, 1500)
    assert Event.objects.filter(source=source).count() == 3 and cookie(page, "ajs_anonymous_id") is None


def test_global_privacy_control_counts_as_a_refusal_when_honoured(page, live_server, site, source):
    # given a visitor whose browser sends Global Privacy Control, on a source set to honour it,
    # whose page even calls consent(true) on load (not a user action)
    source = _privacy(source, honor_gpc=True)
    snippet = snippet_from_sources_page(page, live_server, source)
    assert "respectGPC:true" in snippet
    page.add_init_script("Object.defineProperty(navigator, 'globalPrivacyControl', {get: () => true})")
    sent = []
    page.on("request", lambda request: "/v1/" in request.url and sent.append(request.url))
    banner = '<button id="accept" onclick="cdp.consent({marketing: true})">Accept</button>'
    url = site.publish(
        "index.html", snippet, "<script>cdp.consent(true); cdp.track('Viewed Pricing')</script>" + banner
    )
    # when they open a page that tracks
    page.goto(url)
    page.wait_for_function("window.cdp && window.cdp.initialized === true")
    settle(page, 2000)
    # then nothing is sent or stored
    assert sent == [] and events_of(source) == [] and cookie(page, "ajs_anonymous_id") is None
    assert page.evaluate("Object.keys(localStorage)") == []
    # when they click the site's consent button (a user action: the one way past GPC)
    page.click("#accept")
    page.evaluate("cdp.track('Chose Plan')")
    # then what follows is sent, carrying the consent state and the GPC signal
    stored = wait_for(page, lambda: events_of(source), what="an event")
    assert [(e.type, e.event) for e in stored] == [("track", "Chose Plan")]
    assert stored[0].context["consent"] == {"categoryPreferences": {"marketing": True}}
    assert stored[0].context["gpc"] is True
    # and a reload keeps that choice (it was made by a user action)
    page.reload()
    wait_for(page, lambda: len(events_of(source)) >= 3, what="the reloaded page's events")


def test_source_page_indicator_turns_green_when_a_test_event_arrives(page, live_server, source):
    # given the source page open, waiting for a first event
    snippet_from_sources_page(page, live_server, source)
    status = page.locator("[data-testid=event-status] [data-received]")
    assert status.get_attribute("data-received") == "false"
    # when an event arrives from the source
    response = Client().post(
        "/v1/t",
        json.dumps({"type": "track", "event": "Test", "anonymousId": "a1", "writeKey": source.write_key}),
        content_type="text/plain",
    )
    assert response.status_code == 200
    # then within a poll (every 3 s) the indicator turns green with the event's time
    page.wait_for_selector("[data-testid=event-status] [data-received=true]", timeout=8_000)
    newest = Event.objects.get(source=source).received_at
    shown = page.inner_text("[data-testid=latest-event-at]")
    assert timezone.localtime(newest).strftime("%H:%M:%S") in shown
