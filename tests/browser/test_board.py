import pytest

from pipeline import services
from pipeline.models import Deal, StageChange
from tests.browser.conftest import wait_until
from tests.browser.test_contacts import log_in
from tests.factories import make_pipeline, make_reason, make_user, stages_of

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _drag(page, source, target):
    """Mouse moves in small steps, as a person drags: SortableJS follows pointer events."""
    box = source.bounding_box()
    goal = target.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 10, box["y"] + box["height"] / 2 + 10, steps=5)
    page.mouse.move(goal["x"] + goal["width"] / 2, goal["y"] + 20, steps=20)
    page.mouse.up()


def test_drag_a_card_to_another_column_saves_and_updates_the_headers(page, live_server):
    # given a rep with two deals in the first stage of her pipeline
    rita = make_user(role="Sales", username="rita")
    stages = stages_of(make_pipeline())
    acme = services.deal_create(actor=rita, title="Acme", stage=stages[0], amount=1000)
    services.deal_create(actor=rita, title="Globex", stage=stages[0], amount=500)
    log_in(page, live_server, "rita")
    page.goto(live_server.url + "/pipeline/")
    first, second = (f"#column-header-{s.pk}" for s in stages[:2])
    assert page.inner_text(f"{first} [data-testid=column-count]") == "2"
    assert page.inner_text("[data-testid=board-weighted]") == "150"
    # when she drags Acme onto the second column
    _drag(
        page,
        page.locator(f"#deal-card-{acme.pk}"),
        page.locator(f".board-cards[data-stage-id='{stages[1].pk}']"),
    )
    # then the headers and the weighted total update without a reload
    wait_until(page, f"document.querySelector('{second} [data-testid=column-count]').textContent === '1'")
    assert page.inner_text(f"{first} [data-testid=column-count]") == "1"
    assert page.inner_text(f"{second} [data-testid=column-value]") == "1,000"
    assert page.inner_text("[data-testid=board-weighted]") == "450"  # 1000 x 40% + 500 x 10%
    # and the database has the move and its history
    assert Deal.objects.get(pk=acme.pk).stage_id == stages[1].pk
    assert StageChange.objects.filter(deal=acme, from_stage=stages[0], to_stage=stages[1]).exists()
    # and the card sits in the new column
    assert page.locator(f".board-cards[data-stage-id='{stages[1].pk}'] #deal-card-{acme.pk}").count() == 1


def test_lose_a_deal_from_the_card_menu_asks_for_a_reason(page, live_server):
    rita = make_user(role="Sales", username="rita")
    stages = stages_of(make_pipeline())
    make_reason("Price")
    acme = services.deal_create(actor=rita, title="Acme", stage=stages[0], amount=1000)
    log_in(page, live_server, "rita")
    page.goto(live_server.url + "/pipeline/")
    page.click(f"#deal-card-{acme.pk} [aria-label='Actions for Acme']")
    page.click(f"#deal-card-{acme.pk} [data-testid=lost]")
    page.wait_for_selector("[data-testid=lost-form]")
    # submitting without a reason shows the error in place
    page.click("[data-testid=lost-form] button[type=submit]")
    page.wait_for_selector("[data-testid=lost-error]")
    page.select_option("[data-testid=lost-form] select[name=lost_reason]", "Price")
    page.click("[data-testid=lost-form] button[type=submit]")
    # then the card leaves the board and the header counts it out
    page.wait_for_selector(f"#deal-card-{acme.pk}", state="detached")
    assert page.inner_text(f"#column-header-{stages[0].pk} [data-testid=column-count]") == "0"
    assert Deal.objects.get(pk=acme.pk).lost_reason == "Price"


def test_drag_within_a_column_keeps_the_new_order_after_a_reload(page, live_server):
    # given three deals in one column, shown newest first: C, B, A
    rita = make_user(role="Sales", username="rita")
    stages = stages_of(make_pipeline())
    a, _b, c = (services.deal_create(actor=rita, title=t, stage=stages[0]) for t in "ABC")
    log_in(page, live_server, "rita")
    page.goto(live_server.url + "/pipeline/")
    column = f".board-cards[data-stage-id='{stages[0].pk}']"
    titles = (
        f'Array.from(document.querySelectorAll("{column} .deal-card a.fw-semibold")).map(e => e.textContent)'
    )
    assert page.evaluate(titles) == ["C", "B", "A"]
    # when she drags A up over C
    source = page.locator(f"#deal-card-{a.pk}").bounding_box()
    goal = page.locator(f"#deal-card-{c.pk}").bounding_box()
    page.mouse.move(source["x"] + 40, source["y"] + 20)
    page.mouse.down()
    page.mouse.move(source["x"] + 45, source["y"] + 10, steps=5)
    page.mouse.move(goal["x"] + 40, goal["y"] + 5, steps=20)
    # (waiting for the move's answer itself: "networkidle" could come before the request started)
    with page.expect_response(
        lambda r: r.request.method == "POST" and f"/deals/{a.pk}/move/" in r.url
    ) as moved:
        page.mouse.up()
    assert moved.value.ok
    # then A has moved up, and the order she sees is the one saved: a reload shows it again
    dropped = page.evaluate(titles)
    assert dropped.index("A") < 2, dropped
    page.reload()
    assert page.evaluate(titles) == dropped
    assert not StageChange.objects.filter(deal=a, from_stage__isnull=False).exists()
