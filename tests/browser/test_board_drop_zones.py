"""The board's Won / Lost drop zones and its sideways auto-scroll while dragging, in a real
Chromium (SortableJS follows the pointer as a person drags)."""

import pytest

from pipeline import services
from pipeline.models import Deal, DealStatus, LostReason, StageChange
from tests.browser.conftest import wait_until
from tests.browser.test_contacts import log_in
from tests.factories import make_pipeline, make_user, stages_of

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _press(page, locator):
    """Pick a card up: press on it and move a little, as a person starts a drag."""
    box = locator.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 10, y + 10, steps=5)
    return x, y


def _drop_on(page, locator):
    goal = locator.bounding_box()
    page.mouse.move(goal["x"] + goal["width"] / 2, goal["y"] + goal["height"] / 2, steps=20)
    page.mouse.up()


def _reason(name):
    # get_or_create: a migration may seed default reasons, and a test database can still hold them.
    return LostReason.objects.get_or_create(name=name, defaults={"active": True})[0]


@pytest.fixture
def rita():
    return make_user(role="Sales", username="rita")


def test_dropping_a_card_on_won_wins_the_deal(page, live_server, rita):
    stages = stages_of(make_pipeline())
    acme = services.deal_create(actor=rita, title="Acme", stage=stages[0], amount=1000)
    services.deal_create(actor=rita, title="Globex", stage=stages[0], amount=500)
    log_in(page, live_server, "rita")
    page.goto(live_server.url + "/pipeline/")
    assert page.inner_text("[data-testid=board-value]") == "1,500"
    # when she drags Acme onto the Won zone
    _press(page, page.locator(f"#deal-card-{acme.pk}"))
    _drop_on(page, page.locator("[data-testid=drop-won]"))
    # then the card leaves the board, the totals count it out, and the deal is won
    page.wait_for_selector(f"#deal-card-{acme.pk}", state="detached")
    wait_until(page, "document.querySelector('[data-testid=board-value]').textContent === '500'")
    assert page.inner_text(f"#column-header-{stages[0].pk} [data-testid=column-count]") == "1"
    deal = Deal.objects.get(pk=acme.pk)
    assert deal.status == DealStatus.WON and deal.closed_at is not None
    assert StageChange.objects.filter(deal=acme, to_status=DealStatus.WON, actor=rita).exists()


def test_dropping_a_card_on_lost_asks_for_the_reason_first(page, live_server, rita):
    stages = stages_of(make_pipeline())
    _reason("Budget frozen")
    _reason("Picked a rival")
    acme = services.deal_create(actor=rita, title="Acme", stage=stages[1], amount=1000)
    log_in(page, live_server, "rita")
    page.goto(live_server.url + "/pipeline/")
    # when she drags Acme onto the Lost zone
    _press(page, page.locator(f"#deal-card-{acme.pk}"))
    _drop_on(page, page.locator("[data-testid=drop-lost]"))
    # then the usual lost-reason form opens, the card back in its column until she picks one
    page.wait_for_selector("#app-modal.show [data-testid=lost-form]")
    assert page.locator(f".board-cards[data-stage-id='{stages[1].pk}'] #deal-card-{acme.pk}").count() == 1
    assert Deal.objects.get(pk=acme.pk).status == DealStatus.OPEN
    page.select_option("[data-testid=lost-form] select[name=lost_reason]", "Picked a rival")
    page.click("[data-testid=lost-form] button[type=submit]")
    # and the deal is lost for that reason, off the board
    page.wait_for_selector(f"#deal-card-{acme.pk}", state="detached")
    deal = Deal.objects.get(pk=acme.pk)
    assert (deal.status, deal.lost_reason) == (DealStatus.LOST, "Picked a rival")
    assert page.inner_text(f"#column-header-{stages[1].pk} [data-testid=column-count]") == "0"


def test_cancelling_the_lost_reason_keeps_the_deal_open_on_the_board(page, live_server, rita):
    stages = stages_of(make_pipeline())
    _reason("Budget frozen")
    acme = services.deal_create(actor=rita, title="Acme", stage=stages[0])
    log_in(page, live_server, "rita")
    page.goto(live_server.url + "/pipeline/")
    _press(page, page.locator(f"#deal-card-{acme.pk}"))
    _drop_on(page, page.locator("[data-testid=drop-lost]"))
    page.wait_for_selector("#app-modal.show [data-testid=lost-form]")
    page.click("#app-modal [data-bs-dismiss=modal]")
    page.wait_for_selector("#app-modal", state="hidden")
    assert page.locator(f".board-cards[data-stage-id='{stages[0].pk}'] #deal-card-{acme.pk}").count() == 1
    assert Deal.objects.get(pk=acme.pk).status == DealStatus.OPEN


def test_dragging_to_the_right_edge_scrolls_the_board(browser, live_server, rita):
    # given a board wider than a narrow window
    context = browser.new_context(viewport={"width": 800, "height": 800})
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        names = ("Lead in", "Qualified", "Demo", "Proposal", "Negotiation", "Contract")
        stages = stages_of(make_pipeline(stages=[(name, 10 * i, None) for i, name in enumerate(names)]))
        acme = services.deal_create(actor=rita, title="Acme", stage=stages[0])
        log_in(page, live_server, "rita")
        page.goto(live_server.url + "/pipeline/")
        scroll_left = "document.querySelector('#board .board').scrollLeft"
        assert page.evaluate(scroll_left) == 0
        assert page.evaluate("(b => b.scrollWidth > b.clientWidth)(document.querySelector('#board .board'))")
        # when she drags a card near the right edge of the board (40 px in: the browser's own
        # drag auto-scroll reacts only within a few pixels of it) and holds it there
        _, y = _press(page, page.locator(f"#deal-card-{acme.pk}"))
        edge = page.evaluate("document.querySelector('#board .board').getBoundingClientRect().right")
        page.mouse.move(edge - 40, y, steps=15)
        # A browser repeats dragover while a held card stands still; Playwright's emulated drag
        # fires it only on mouse moves. If the drag began after the last of those moves (the box
        # under load), the board has not heard of the edge yet: nudge the pointer by a pixel
        # until it has (a positive signal, not a wait of a guessed length).
        autoscroll = "document.querySelector('#board .board').dataset.autoscroll || '0'"
        for nudge in range(100):
            if page.evaluate(autoscroll) != "0":
                break
            page.mouse.move(edge - 40 + nudge % 2, y)
        # then the board scrolls to the right under the card
        wait_until(page, f"{scroll_left} > 100", timeout=10)
        page.mouse.move(edge - 300, y, steps=5)  # back in the middle: the scrolling stops
        wait_until(page, "document.querySelector('#board .board').dataset.autoscroll === '0'", timeout=5)
        still = page.evaluate(scroll_left)
        # the scroll steps once per animation frame: three frames later it has not moved
        frame = "new Promise(r => requestAnimationFrame(r))"
        for _ in range(3):
            page.evaluate(frame)
        assert page.evaluate(scroll_left) == still
        page.mouse.up()
    finally:
        context.close()
