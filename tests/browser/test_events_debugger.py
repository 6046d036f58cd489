import pytest

from events.models import Source
from tests.browser.conftest import wait_until
from tests.factories import PASSWORD, make_user, store_messages

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _store(source, name, **extra):
    store_messages(source, {"type": "track", "event": name, "userId": "u1", **extra})


# The Events page polls every 2 s. The page's timers run on Playwright's clock, so a test moves it
# on to the next tick instead of sleeping through one, and counts the poller's ticks: sent (and
# answered), or held back by the pause.
COUNT_POLLS = """
window.__polls = {sent: 0, held: 0, answered: 0};
window.addEventListener("htmx:beforeRequest", (event) => {
  if (event.detail.elt.id !== "event-poller") return;
  if (event.defaultPrevented) __polls.held += 1;
  else __polls.sent += 1;
});
window.addEventListener("htmx:afterRequest", (event) => {
  if (event.detail.elt.id === "event-poller") __polls.answered += 1;
});
"""


@pytest.fixture
def page(page):
    page.clock.install()
    page.add_init_script(COUNT_POLLS)
    return page


def next_poll(page, *, held: bool = False) -> None:
    """Move the page's clock on by one poll interval and wait for a tick made from now on: held
    back by the pause, or sent and answered (its rows swapped in; the poller's requests go one at
    a time, so answers come in the order they were sent)."""
    if held:
        before = page.evaluate("__polls.held")
        page.clock.run_for(2000)
        wait_until(page, f"__polls.held > {before}")
    else:
        before = page.evaluate("__polls.sent")
        page.clock.run_for(2000)
        wait_until(page, f"__polls.answered > {before}")


def test_new_events_appear_live_expand_to_escaped_json_and_pause_holds_them(page, live_server):
    # given a marketer on the Events page with one event already stored
    make_user(role="Marketing", username="mo")
    source = Source.objects.create(name="Website")
    _store(source, "Signed Up")
    page.goto(live_server.url + "/login/?next=/events/")
    page.fill("#id_username", "mo")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/events/")
    rows = page.locator("#event-rows .event-row")
    assert rows.count() == 1
    # when a new event arrives, it appears at the top within a few seconds, without a reload
    _store(source, "Order Completed", properties={"note": "<img src=x onerror=alert(1)>"})
    wait_until(page, "document.querySelectorAll('#event-rows .event-row').length === 2", timeout=8)
    assert rows.first.locator(".event-name").inner_text() == "Order Completed"
    # and expanding it shows the JSON as text, the payload inert
    rows.first.locator("summary").click()
    json_text = rows.first.locator("pre").inner_text()
    assert '"note": "<img src=x onerror=alert(1)>"' in json_text
    assert page.locator("#event-rows img").count() == 0
    # when the marketer pauses, later events are not fetched
    page.click("#live-toggle")
    assert page.get_attribute("#live-toggle", "aria-pressed") == "true"
    _store(source, "While paused")
    next_poll(page, held=True)
    assert rows.count() == 2
    # and after resuming they arrive
    page.click("#live-toggle")
    wait_until(page, "document.querySelectorAll('#event-rows .event-row').length === 3", timeout=8)
    assert rows.first.locator(".event-name").inner_text() == "While paused"
    # the per-minute chart was drawn by Chart.js
    assert page.evaluate("!!Chart.getChart(document.getElementById('per-minute-chart'))")


def test_filters_swap_the_list_and_the_poll_keeps_them(page, live_server):
    # given an Admin on the Events page with events of two types
    make_user(role="Admin", username="ada")
    source = Source.objects.create(name="Website")
    _store(source, "Signed Up")
    _store(source, "Order Completed")
    page.goto(live_server.url + "/login/?next=/events/")
    page.fill("#id_username", "ada")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/events/")
    rows = page.locator("#event-rows .event-row")
    assert rows.count() == 2
    # when she types part of an event name
    page.fill("#f-name", "order")
    wait_until(page, "document.querySelectorAll('#event-rows .event-row').length === 1")
    # then only the matching event is listed and the URL carries the filter
    assert rows.first.locator(".event-name").inner_text() == "Order Completed"
    assert "name=order" in page.url
    # and the live poll honours it: a matching event appears, a non-matching one does not
    _store(source, "Signed Up Again")
    _store(source, "Order Refunded Order")
    wait_until(page, "document.querySelectorAll('#event-rows .event-row').length === 2", timeout=8)
    next_poll(page)  # one more poll: the non-matching event would be in it
    assert [rows.nth(i).locator(".event-name").inner_text() for i in range(rows.count())] == [
        "Order Refunded Order",
        "Order Completed",
    ]
