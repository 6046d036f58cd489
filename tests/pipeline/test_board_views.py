import pytest

from pipeline import services
from pipeline.models import Deal, Stage, StageChange
from tests.factories import make_contact, make_pipeline, make_reason, make_user, stages_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def stages():
    return stages_of(make_pipeline())


def _seed(stages, owner, n):
    for i in range(n):
        services.deal_create(actor=owner, title=f"Deal {i}", stage=stages[i % len(stages)], amount=100)


@pytest.mark.parametrize("n", [3, 90])
def test_board_query_count_does_not_grow_with_deals(
    client, sales_user, stages, django_assert_max_num_queries, n
):
    # given a board with few or many deals
    _seed(stages, sales_user, n)
    client.force_login(sales_user)
    # when the board renders, the number of queries is the same
    with django_assert_max_num_queries(12):
        html = client.get("/pipeline/").content.decode()
    # then each column shows at most 20 cards and a "more" loader when it has more
    assert html.count('data-testid="deal-card"') == min(n, 60)
    assert ("intersect once" in html) == (n == 90)
    assert f'<strong class="text-body">{n}</strong> open deal' in html


def test_column_page_loads_the_next_cards(client, sales_user, stages, django_assert_max_num_queries):
    _seed(stages[:1], sales_user, 45)
    client.force_login(sales_user)
    with django_assert_max_num_queries(8):
        html = client.get(f"/pipeline/stages/{stages[0].pk}/cards/?offset=20&owner=all").content.decode()
    assert html.count('data-testid="deal-card"') == 20 and "offset=40" in html and "<html" not in html
    last = client.get(f"/pipeline/stages/{stages[0].pk}/cards/?offset=40").content.decode()
    assert last.count('data-testid="deal-card"') == 5 and "intersect once" not in last


def test_sales_see_their_own_deals_by_default_and_the_team_on_request(client, sales_user, stages):
    services.deal_create(actor=sales_user, title="Mine", stage=stages[0])
    services.deal_create(actor=make_user(role="Sales"), title="Colleague's", stage=stages[0])
    client.force_login(sales_user)
    html = client.get("/pipeline/").content.decode()
    assert "Mine" in html and "Colleague" not in html
    team = client.get("/pipeline/?owner=all").content.decode()
    assert "Colleague&#x27;s" in team
    # the colleague's card is read-only: no Won/Lost menu, and SortableJS will not drag it
    assert team.count("deal-card card shadow-sm mb-2 locked") == 1 and team.count('data-testid="won"') == 1


def test_drag_move_saves_and_answers_with_out_of_band_headers(client, sales_user, stages):
    # given a deal in the first column
    deal = services.deal_create(actor=sales_user, title="Acme", stage=stages[0], amount=1500)
    client.force_login(sales_user)
    # when the board posts a drop into the second column
    response = client.post(
        f"/deals/{deal.pk}/move/",
        {"stage": stages[1].pk, "from": "board", "owner": "mine"},
        HTTP_HX_REQUEST="true",
    )
    html = response.content.decode()
    # then the move is saved with its history, and headers and totals come back out of band
    assert Deal.objects.get(pk=deal.pk).stage == stages[1]
    assert StageChange.objects.filter(deal=deal, from_stage=stages[0], to_stage=stages[1]).exists()
    assert f'id="column-header-{stages[1].pk}" class="mb-2" hx-swap-oob="true"' in html
    assert (
        'id="board-totals"' in html
        and 'weighted <strong class="text-body" data-testid="board-weighted">600' in html
    )


def test_moving_another_reps_deal_is_forbidden(client, sales_user, stages):
    deal = services.deal_create(actor=make_user(role="Sales"), title="Theirs", stage=stages[0])
    client.force_login(sales_user)
    assert client.post(f"/deals/{deal.pk}/move/", {"stage": stages[1].pk, "from": "board"}).status_code == 403
    assert Deal.objects.get(pk=deal.pk).stage == stages[0]


def test_lost_without_a_reason_shows_the_error_in_place(client, sales_user, stages):
    make_reason("Price")
    deal = services.deal_create(actor=sales_user, title="Acme", stage=stages[0])
    client.force_login(sales_user)
    response = client.post(f"/deals/{deal.pk}/lost/", {"from": "board"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 422 and "Pick the reason" in response.content.decode()
    response = client.post(
        f"/deals/{deal.pk}/lost/", {"from": "board", "lost_reason": "Price"}, HTTP_HX_REQUEST="true"
    )
    assert f'id="deal-card-{deal.pk}" hx-swap-oob="delete"' in response.content.decode()
    assert Deal.objects.get(pk=deal.pk).lost_reason == "Price"
    assert "Acme" not in client.get("/pipeline/").content.decode()


def test_won_from_the_deal_page_and_reopen(client, sales_user, stages):
    deal = services.deal_create(actor=sales_user, title="Acme", stage=stages[0])
    client.force_login(sales_user)
    page = client.post(f"/deals/{deal.pk}/won/", follow=True).content.decode()
    assert "Acme won." in page and 'data-testid="reopen"' in page
    page = client.post(f"/deals/{deal.pk}/reopen/", follow=True).content.decode()
    assert "Marked won" in page and "Reopened" in page


def test_quick_add_in_a_column_and_inline_edit(client, sales_user, stages):
    client.force_login(sales_user)
    form = client.get(f"/deals/new/?stage={stages[1].pk}&from=board", HTTP_HX_REQUEST="true").content.decode()
    assert "New deal in Sales / Demo" in form
    bad = client.post(
        "/deals/new/", {"stage": stages[1].pk, "title": "", "currency": "USD"}, HTTP_HX_REQUEST="true"
    )
    assert bad.status_code == 422 and "This field is required" in bad.content.decode()
    ok = client.post(
        "/deals/new/",
        {"stage": stages[1].pk, "title": "Globex", "currency": "usd", "amount": "250", "from": "board"},
        HTTP_HX_REQUEST="true",
    )
    deal = Deal.objects.get(title="Globex")
    assert ok.headers["HX-Redirect"] == f"/pipeline/?pipeline={stages[1].pipeline_id}"
    assert (deal.stage, deal.currency, deal.owner) == (stages[1], "USD", sales_user)
    edited = client.post(
        f"/deals/{deal.pk}/edit/",
        {"title": "Globex <b>big</b>", "currency": "EUR", "amount": "900"},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert "Globex &lt;b&gt;big&lt;/b&gt;" in client.get(f"/deals/{deal.pk}/").content.decode()
    assert "900.00 EUR" in edited and Deal.objects.get(pk=deal.pk).title == "Globex <b>big</b>"


def test_deal_page_shows_stage_bar_history_and_people(client, sales_user, stages):
    deal = services.deal_create(actor=sales_user, title="Acme <script>", stage=stages[0])
    services.deal_move(deal=deal, to_stage=stages[2], actor=sales_user)
    client.force_login(sales_user)
    html = client.get(f"/deals/{deal.pk}/").content.decode()
    assert "Acme &lt;script&gt;" in html and "Acme <script>" not in html
    assert (
        "Lead in → Proposal" in html and 'aria-current="step"' in html and 'id="deal-activity-slot"' in html
    )
    # the activities panel is lazy-loaded into the deal page from the activities feature's URL
    assert f'hx-get="/deals/{deal.pk}/activities/" hx-trigger="load"' in html
    panel = client.get(f"/deals/{deal.pk}/activities/", HTTP_HX_REQUEST="true")
    assert panel.status_code == 200 and "<html" not in panel.content.decode()
    client.post(f"/deals/{deal.pk}/move/", {"stage": stages[1].pk})
    assert Deal.objects.get(pk=deal.pk).stage == stages[1]


def test_pipeline_settings_are_admin_only_and_refuse_deleting_a_stage_with_deals(
    admin_client, sales_user, stages
):
    services.deal_create(actor=None, title="Acme", stage=stages[0])
    page = admin_client.post(
        "/settings/pipelines/stage-delete/", {"id": stages[0].pk}, follow=True
    ).content.decode()
    assert "holds 1 deal; move them to another stage before deleting it." in page
    admin_client.post("/settings/pipelines/reason-create/", {"name": "Budget"})
    assert "Budget" in admin_client.get("/settings/pipelines/").content.decode()
    assert "Manage pipelines" in admin_client.get("/settings/").content.decode()
    admin_client.force_login(sales_user)
    assert admin_client.get("/settings/pipelines/").status_code == 403


def test_settings_delete_a_stage_with_deals_by_moving_them_to_another(admin_client, stages):
    # given a stage holding a won and an open deal
    open_deal = services.deal_create(actor=None, title="Acme", stage=stages[0])
    won = services.deal_create(actor=None, title="Globex", stage=stages[0])
    Deal.objects.filter(pk=won.pk).update(status="won")
    # the settings page offers the move beside that stage's delete button, not beside an empty one
    page = admin_client.get("/settings/pipelines/").content.decode()
    assert page.count('data-testid="stage-delete-move"') == 1
    move_form = page.split('data-testid="stage-delete-move"')[1].split("</form>")[0]
    assert f'<option value="{stages[1].pk}">{stages[1].name}</option>' in move_form
    assert f'<option value="{stages[0].pk}">' not in move_form  # not to itself
    assert "Move 2 deals to" in move_form
    # a stage of another pipeline is refused, and nothing moves or goes
    other = services.pipeline_create(actor=None, name="Partners")
    page = admin_client.post(
        "/settings/pipelines/stage-delete/",
        {"id": stages[0].pk, "move_deals_to": other.stages.first().pk},
        follow=True,
    ).content.decode()
    assert "is in another pipeline." in page
    assert Stage.objects.filter(pk=stages[0].pk).exists()
    # when the Admin deletes it moving the deals to the next stage
    page = admin_client.post(
        "/settings/pipelines/stage-delete/", {"id": stages[0].pk, "move_deals_to": stages[1].pk}, follow=True
    ).content.decode()
    # then both deals (any status) are there, the stage is gone, and the page says so
    assert f"Moved 2 deals to {stages[1].name}." in page
    assert not Stage.objects.filter(pk=stages[0].pk).exists()
    assert set(Deal.objects.filter(pk__in=[open_deal.pk, won.pk]).values_list("stage", flat=True)) == {
        stages[1].pk
    }


def test_won_from_the_board_removes_the_card_and_updates_the_headers(client, sales_user, stages):
    # given two deals in the first column
    acme = services.deal_create(actor=sales_user, title="Acme", stage=stages[0], amount=1000)
    services.deal_create(actor=sales_user, title="Globex", stage=stages[0], amount=500)
    client.force_login(sales_user)
    # when the card menu's Won is clicked
    html = client.post(f"/deals/{acme.pk}/won/", {"from": "board"}, HTTP_HX_REQUEST="true").content.decode()
    # then the headers come back out of band with the deal counted out (the card is swapped away)
    header = html.split(f'id="column-header-{stages[0].pk}"')[1].split("</header>")[0]
    assert 'data-testid="column-count">1<' in header and 'data-testid="column-value">500<' in header
    assert "Acme" not in html and Deal.objects.get(pk=acme.pk).status == "won"


def test_lost_from_the_deal_page_redirects_back_to_it(client, sales_user, stages):
    make_reason("Timing")
    deal = services.deal_create(actor=sales_user, title="Acme", stage=stages[0])
    client.force_login(sales_user)
    form = client.get(f"/deals/{deal.pk}/lost/", HTTP_HX_REQUEST="true").content.decode()
    assert '<option value="Timing">Timing</option>' in form and "<html" not in form
    response = client.post(f"/deals/{deal.pk}/lost/", {"lost_reason": "Timing"}, HTTP_HX_REQUEST="true")
    assert response.headers["HX-Redirect"] == f"/deals/{deal.pk}/"
    assert "Lost: Timing" in client.get(f"/deals/{deal.pk}/").content.decode()


def test_marketing_reads_the_board_but_cannot_change_or_add(client, marketing_user, stages):
    deal = services.deal_create(actor=None, title="Pool deal", stage=stages[0])
    client.force_login(marketing_user)
    html = client.get("/pipeline/").content.decode()
    assert "Pool deal" in html and 'data-testid="won"' not in html and "/deals/new/" not in html
    assert client.post(f"/deals/{deal.pk}/won/").status_code == 403
    assert client.get("/deals/new/").status_code == 403


def test_participants_are_added_from_the_picker_and_removed(client, sales_user, stages):
    ada = make_contact(first_name="Ada", last_name="Lovelace", email="ada@example.com")
    grace = make_contact(first_name="Grace", last_name="Hopper", email="grace@example.com")
    deal = services.deal_create(actor=sales_user, title="Acme", stage=stages[0], contact=ada)
    client.force_login(sales_user)
    options = client.get("/pipeline/contact-options/?add=hopp").content.decode()
    assert f'value="Grace Hopper (#{grace.pk})"' in options and "Ada" not in options
    client.post(f"/deals/{deal.pk}/participants/", {"add": f"Grace Hopper (#{grace.pk})"})
    client.post(
        f"/deals/{deal.pk}/participants/", {"add": f"Ada Lovelace (#{ada.pk})"}
    )  # the primary: ignored
    assert [p.pk for p in deal.participants.all()] == [grace.pk]
    page = client.post(f"/deals/{deal.pk}/participants/", {"add": "nobody"}, follow=True).content.decode()
    assert "Pick a contact from the list" in page
    client.post(f"/deals/{deal.pk}/participants/", {"remove": grace.pk})
    assert not deal.participants.exists()
