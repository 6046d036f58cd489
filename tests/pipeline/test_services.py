from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from core.errors import Conflict, Forbidden
from pipeline import selectors, services
from pipeline.models import Deal, DealStatus, StageChange
from pipeline.selectors import BoardFilters, next_activity_badge, rotting_days
from tests.factories import make_contact, make_pipeline, make_reason, make_user, stages_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def stages():
    return stages_of(make_pipeline())


def test_deal_create_copies_attribution_and_makes_the_contact_an_opportunity(stages, sales_user):
    # given a lead who came from a newsletter
    ada = make_contact(email="ada@example.com", lifecycle_stage="lead")
    ada.attribution = {"utm_source": "newsletter"}
    ada.save(update_fields=["attribution"])
    # when a rep opens a deal with her
    deal = services.deal_create(
        actor=sales_user, title="Ada pilot", stage=stages[0], contact=ada, amount="1200"
    )
    # then the deal is the rep's, carries the first touch, and Ada is an opportunity
    assert (deal.owner, deal.amount, deal.attribution) == (
        sales_user,
        Decimal("1200.00"),
        {"utm_source": "newsletter"},
    )
    assert deal.stage_entered_at is not None and deal.pipeline_id == stages[0].pipeline_id
    ada.refresh_from_db()
    assert ada.lifecycle_stage == "opportunity"
    assert list(StageChange.objects.values_list("from_stage", "to_stage", "to_status")) == [
        (None, stages[0].pk, "open")
    ]


def test_a_customer_with_a_new_deal_stays_a_customer(stages, sales_user):
    grace = make_contact(email="g@example.com", lifecycle_stage="customer")
    services.deal_create(actor=sales_user, title="Upsell", stage=stages[0], contact=grace)
    grace.refresh_from_db()
    assert grace.lifecycle_stage == "customer"


def test_deal_move_records_each_stage_change_once(stages, sales_user):
    # given a deal in the first stage
    deal = services.deal_create(actor=sales_user, title="Acme", stage=stages[0])
    # when it moves twice, once to where it already is
    services.deal_move(deal=deal, to_stage=stages[1], actor=sales_user)
    services.deal_move(deal=deal, to_stage=stages[1], actor=sales_user)
    services.deal_move(deal=deal, to_stage=stages[2], actor=sales_user)
    # then the history has the creation and the two real moves, newest first
    history = selectors.deal_stage_history(user=sales_user, deal=deal)
    assert [(c.from_stage_id, c.to_stage_id) for c in history] == [
        (stages[1].pk, stages[2].pk),
        (stages[0].pk, stages[1].pk),
        (None, stages[0].pk),
    ]
    assert Deal.objects.get(pk=deal.pk).stage == stages[2]


def test_deal_move_restarts_the_rotting_clock(stages, sales_user):
    deal = services.deal_create(actor=sales_user, title="Acme", stage=stages[0])
    Deal.objects.filter(pk=deal.pk).update(stage_entered_at=datetime(2020, 1, 1, tzinfo=UTC))
    deal = services.deal_move(deal=deal, to_stage=stages[1], actor=sales_user)
    assert deal.stage_entered_at.year > 2020


def test_deal_move_within_a_column_puts_it_between_its_neighbours(stages, sales_user):
    # given three deals in a column, newest first
    a, b, c = (services.deal_create(actor=sales_user, title=t, stage=stages[0]) for t in "abc")

    def column():
        return [
            d.title
            for d in selectors.column_cards(user=sales_user, stage=stages[0], filters=BoardFilters())[0]
        ]

    assert column() == ["c", "b", "a"]
    # when "a" is dropped between "c" and "b"
    services.deal_move(deal=a, to_stage=stages[0], actor=sales_user, after=c, before=b)
    # then the column shows the new order and no stage change was recorded
    assert column() == ["c", "a", "b"]
    assert StageChange.objects.filter(deal=a).count() == 1


def test_deal_move_between_tied_neighbours_renumbers_the_column(stages, sales_user):
    # given deals made outside the service, all at position 0
    x, y, z = (Deal.objects.create(pipeline=stages[0].pipeline, stage=stages[0], title=t) for t in "xyz")
    services.deal_move(deal=x, to_stage=stages[0], actor=sales_user, after=z, before=y)
    titles = [
        d.title for d in selectors.column_cards(user=sales_user, stage=stages[0], filters=BoardFilters())[0]
    ]
    assert titles == ["z", "x", "y"]


def test_deal_move_refuses_a_stage_of_another_pipeline_and_a_closed_deal(stages, sales_user):
    other = stages_of(make_pipeline(name="Partners"))
    deal = services.deal_create(actor=sales_user, title="Acme", stage=stages[0])
    with pytest.raises(ValidationError):
        services.deal_move(deal=deal, to_stage=other[0], actor=sales_user)
    services.deal_mark_won(deal=deal, actor=sales_user)
    with pytest.raises(Conflict):
        services.deal_move(deal=deal, to_stage=stages[1], actor=sales_user)


def test_won_makes_the_contact_a_customer_and_reopen_puts_it_back(stages, sales_user):
    ada = make_contact(email="ada@example.com")
    deal = services.deal_create(actor=sales_user, title="Ada pilot", stage=stages[1], contact=ada)
    deal = services.deal_mark_won(deal=deal, actor=sales_user)
    ada.refresh_from_db()
    assert (deal.status, ada.lifecycle_stage) == ("won", "customer") and deal.closed_at
    deal = services.deal_reopen(deal=deal, actor=sales_user)
    assert (deal.status, deal.closed_at, deal.stage_id) == ("open", None, stages[1].pk)
    assert [c.to_status for c in selectors.deal_stage_history(user=sales_user, deal=deal)] == [
        "open",
        "won",
        "open",
    ]


def test_lost_needs_a_reason_from_the_configured_list(stages, sales_user):
    make_reason("Price")
    deal = services.deal_create(actor=sales_user, title="Acme", stage=stages[0])
    with pytest.raises(ValidationError) as missing:
        services.deal_mark_lost(deal=deal, actor=sales_user, reason="  ")
    assert "Pick the reason" in str(missing.value)
    with pytest.raises(ValidationError) as unknown:
        services.deal_mark_lost(deal=deal, actor=sales_user, reason="Made up")
    assert "not one of the configured" in str(unknown.value)
    deal = services.deal_mark_lost(deal=deal, actor=sales_user, reason="Price")
    assert (deal.status, deal.lost_reason) == ("lost", "Price")
    # and the database refuses a lost deal without a reason, whoever writes it
    with pytest.raises(IntegrityError), transaction.atomic():
        Deal.objects.filter(pk=deal.pk).update(lost_reason="")


def test_sales_change_own_and_unowned_deals_marketing_nothing(stages, sales_user, marketing_user, admin_user):
    other_rep = make_user(role="Sales")
    theirs = services.deal_create(actor=other_rep, title="Theirs", stage=stages[0])
    pool = services.deal_create(actor=admin_user, title="Pool", stage=stages[0], owner=None)
    # a rep cannot move another rep's deal, but may work the shared pool
    with pytest.raises(Forbidden):
        services.deal_move(deal=theirs, to_stage=stages[1], actor=sales_user)
    services.deal_move(deal=pool, to_stage=stages[1], actor=sales_user)
    # marketing reads but cannot create or change
    with pytest.raises(Forbidden):
        services.deal_create(actor=marketing_user, title="No", stage=stages[0])
    with pytest.raises(Forbidden):
        services.deal_update(deal=pool, actor=marketing_user, title="No")
    assert (
        selectors.board_totals(user=marketing_user, pipeline=stages[0].pipeline, filters=BoardFilters()).count
        == 2
    )
    # an admin changes anything
    services.deal_update(deal=theirs, actor=admin_user, title="Renamed")
    assert Deal.objects.get(pk=theirs.pk).title == "Renamed"


def test_deal_update_validates_amount_and_title(stages, sales_user):
    deal = services.deal_create(actor=sales_user, title="Acme", stage=stages[0])
    with pytest.raises(ValidationError) as exc:
        services.deal_update(deal=deal, actor=sales_user, title=" ", amount="-5")
    assert set(exc.value.message_dict) == {"title", "amount"}


def test_board_totals_and_weighted_value_follow_the_filters(stages, sales_user):
    # given deals in two stages (10% and 40%), one of them another rep's
    other = make_user(role="Sales")
    services.deal_create(actor=sales_user, title="a", stage=stages[0], amount=1000)
    services.deal_create(actor=sales_user, title="b", stage=stages[1], amount=500)
    services.deal_create(actor=other, title="c", stage=stages[1], amount=2000)
    lost = services.deal_create(actor=sales_user, title="d", stage=stages[1], amount=9999)
    make_reason("Price")
    services.deal_mark_lost(deal=lost, actor=sales_user, reason="Price")
    # when the board is summed for everyone, then for "mine", then by amount
    team = selectors.board_totals(user=sales_user, pipeline=stages[0].pipeline, filters=BoardFilters())
    mine = selectors.board_totals(
        user=sales_user, pipeline=stages[0].pipeline, filters=BoardFilters(owner="mine")
    )
    big = selectors.board_totals(
        user=sales_user, pipeline=stages[0].pipeline, filters=BoardFilters(amount_min=Decimal("900"))
    )
    # then lost deals are left out and the weighted value is amount times probability
    assert (team.count, team.value, team.weighted) == (3, Decimal("3500"), Decimal("1100.00"))
    assert [(c.count, c.value) for c in team.columns] == [(1, Decimal("1000")), (2, Decimal("2500")), (0, 0)]
    assert (mine.count, mine.weighted) == (2, Decimal("300.00"))
    assert (big.count, big.value) == (2, Decimal("3000"))


def test_next_activity_badge_by_calendar_day():
    now = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
    assert next_activity_badge(None, now=now) == "none"
    assert next_activity_badge(now - timedelta(days=1), now=now) == "overdue"
    assert next_activity_badge(now - timedelta(hours=2), now=now) == "today"  # earlier today: still today
    assert next_activity_badge(now + timedelta(hours=3), now=now) == "today"
    assert next_activity_badge(now + timedelta(days=1), now=now) == "future"


def test_rotting_counts_from_the_later_of_stage_entry_and_last_activity():
    now = datetime(2026, 3, 10, tzinfo=UTC)
    entered = now - timedelta(days=10)
    assert rotting_days(stage_entered_at=entered, last_activity_at=None, rot_after=7, now=now) == 3
    assert (
        rotting_days(stage_entered_at=entered, last_activity_at=now - timedelta(days=2), rot_after=7, now=now)
        is None
    )
    assert rotting_days(stage_entered_at=entered, last_activity_at=None, rot_after=None, now=now) is None
    assert rotting_days(stage_entered_at=entered, last_activity_at=None, rot_after=10, now=now) is None


def test_cards_sort_by_urgency_then_newest(stages, sales_user):
    now = datetime.now(UTC)
    make = lambda title, nxt: services.deal_create(actor=sales_user, title=title, stage=stages[0])  # noqa: E731
    for title, nxt in [
        ("future", now + timedelta(days=3)),
        ("none-old", None),
        ("overdue", now - timedelta(days=2)),
        ("today", now),
        ("none-new", None),
    ]:
        deal = make(title, nxt)
        Deal.objects.filter(pk=deal.pk).update(next_activity_at=nxt)
    cards, more = selectors.column_cards(user=sales_user, stage=stages[0], filters=BoardFilters())
    assert [d.title for d in cards] == ["overdue", "today", "none-new", "none-old", "future"] and not more


def test_stage_with_deals_cannot_be_deleted(stages, admin_user, sales_user):
    services.deal_create(actor=admin_user, title="Acme", stage=stages[1])
    with pytest.raises(Forbidden):
        services.stage_delete(actor=sales_user, stage=stages[2])
    with pytest.raises(Conflict, match="holds 1 deal"):
        services.stage_delete(actor=admin_user, stage=stages[1])
    services.stage_delete(actor=admin_user, stage=stages[2])
    assert [s.name for s in stages[0].pipeline.stages.all()] == ["Lead in", "Demo"]


def test_pipeline_and_stage_settings(admin_user):
    pipeline = services.pipeline_create(actor=admin_user, name="Partners")
    assert [s.name for s in pipeline.stages.all()] == [
        "Qualified",
        "Contact made",
        "Demo scheduled",
        "Proposal made",
        "Negotiation",
    ]
    new = services.stage_create(
        actor=admin_user, pipeline=pipeline, name="Signed", probability=95, rotting_days="0"
    )
    assert (new.probability, new.rotting_days) == (95, None)
    with pytest.raises(ValidationError):
        services.stage_create(actor=admin_user, pipeline=pipeline, name="signed", probability=101)
    ids = list(pipeline.stages.values_list("pk", flat=True))
    services.stage_reorder(actor=admin_user, pipeline=pipeline, stage_ids=ids[::-1])
    assert pipeline.stages.first().name == "Signed"
    reason = services.lost_reason_create(actor=admin_user, name="Timing")
    services.lost_reason_update(actor=admin_user, reason=reason, name="Bad timing", active=False)
    assert (
        selectors.lost_reasons() == [] and selectors.lost_reasons(active_only=False)[0].name == "Bad timing"
    )
    assert DealStatus.OPEN == "open"
