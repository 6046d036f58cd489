"""Point-in-time features: nothing dated on or after the snapshot day reaches its features."""

import datetime as dt

import numpy as np
import pytest
from django.db.models import F
from django.utils import timezone

from contacts.models import Contact, FieldChange
from identity.models import ActivityKind, DailyActivity
from pipeline.models import Deal, DealStatus
from predictions.models import Goal, PredictionModel
from predictions.services import features, training
from tests.factories import make_contact, make_deal

from .helpers import GOAL, history

pytestmark = pytest.mark.django_db

AS_OF = dt.date(2026, 9, 1)
AT = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)


def _features(contact_ids, *, as_of=AS_OF, spec=None) -> features.FeatureBlock:
    ctx = features.FeatureContext(
        as_of=as_of, contact_ids=np.array(contact_ids), spec=spec if spec is not None else {}, training=True
    )
    return features.features_build(ctx=ctx)


def _value(block: features.FeatureBlock, name: str, row: int = 0) -> float:
    return float(block.values[row, block.names.index(name)])


def test_rollups_on_or_after_the_snapshot_day_do_not_count():
    person = make_contact(email="a@example.com")
    for day, count in ((AS_OF - dt.timedelta(days=1), 2), (AS_OF, 5), (AS_OF + dt.timedelta(days=3), 7)):
        DailyActivity.objects.create(
            contact=person, day=day, kind=ActivityKind.PAGE, key="/pricing", count=count
        )
    block = _features([person.pk])
    assert _value(block, "activity:page:/pricing:7d") == 2
    assert _value(block, "activity:page:/pricing:90d") == 2
    assert _value(block, "activity:pages:30d") == 2
    assert _value(block, "activity:recency") == 1


def test_a_deal_won_after_the_snapshot_is_an_open_deal_then():
    person = make_contact(email="b@example.com")
    before = make_deal(contact=person, title="Won before")
    after = make_deal(contact=person, title="Won after")
    later = make_deal(contact=person, title="Created after")
    Deal.objects.filter(pk=before.pk).update(
        status=DealStatus.WON, created_at=AT - dt.timedelta(days=40), closed_at=AT - dt.timedelta(days=10)
    )
    Deal.objects.filter(pk=after.pk).update(
        status=DealStatus.WON, created_at=AT - dt.timedelta(days=5), closed_at=AT + dt.timedelta(days=2)
    )
    Deal.objects.filter(pk=later.pk).update(created_at=AT + dt.timedelta(days=1))
    block = _features([person.pk])
    assert _value(block, "deals:created") == 2
    assert _value(block, "deals:won") == 1
    assert _value(block, "deals:open") == 1
    assert _value(block, "deals:days_since_won") == 10


def test_the_lifecycle_stage_is_the_one_held_at_the_snapshot():
    person = make_contact(email="c@example.com", lifecycle_stage="customer")
    Contact.objects.filter(pk=person.pk).update(created_at=AT - dt.timedelta(days=30))
    change = FieldChange.objects.create(
        entity="contact", object_id=person.pk, field="lifecycle_stage", old_value="lead", new_value="customer"
    )
    FieldChange.objects.filter(pk=change.pk).update(changed_at=AT + dt.timedelta(days=2))
    block = _features([person.pk])
    assert _value(block, "crm:lifecycle:lead") == 1
    assert _value(block, "crm:lifecycle:customer") == 0
    assert _value(block, "crm:age_days") == 30
    # today (after the change) it is a customer
    assert _value(_features([person.pk], as_of=timezone.now().date()), "crm:lifecycle:customer") == 1


def test_a_first_touch_after_the_snapshot_is_not_known_then():
    person = make_contact(email="d@example.com")
    Contact.objects.filter(pk=person.pk).update(
        attribution={"utm_source": "newsletter", "touched_at": (AT + dt.timedelta(days=1)).isoformat()}
    )
    spec = {"crm": {"sources": ["newsletter"], "sizes": [], "industries": []}}
    assert _value(_features([person.pk], spec=spec), "crm:source:newsletter") == 0
    assert (
        _value(_features([person.pk], as_of=AS_OF + dt.timedelta(days=2), spec=spec), "crm:source:newsletter")
        == 1
    )


def test_a_whole_snapshot_is_unchanged_by_everything_after_it():
    # given a generated history, and the training snapshot's features and labels
    today = timezone.now().date()
    ids = history(people=80, days=120, seed=5, today=today)
    model = PredictionModel.objects.create(name="m", goal=Goal.EVENT, event_name=GOAL, horizon_days=30)
    as_of = today - dt.timedelta(days=60)
    spec: dict = {"fit_before": as_of.isoformat()}
    first = training.snapshot_build(model=model, as_of=as_of, spec=spec, training=True)
    # when a burst of activity, orders, deals and new contacts lands on and after the snapshot day
    late = [as_of + dt.timedelta(days=d) for d in range(0, 20, 3)]
    DailyActivity.objects.filter(day__gte=as_of).update(count=F("count") + 5)
    DailyActivity.objects.bulk_create(
        [
            DailyActivity(contact_id=pk, day=day, kind=kind, key=key, count=9)
            for pk in ids[:40]
            for day in late
            for kind, key in ((ActivityKind.PAGE, "/pricing"), (ActivityKind.EVENT, GOAL))
        ],
        ignore_conflicts=True,
    )
    for pk in ids[:10]:
        deal = make_deal(contact_id=pk, title="late")
        Deal.objects.filter(pk=deal.pk).update(status=DealStatus.WON, closed_at=timezone.now())
    make_contact(email="newcomer@example.com")
    again = training.snapshot_build(model=model, as_of=as_of, spec=spec, training=False)
    # then the snapshot's population and features are identical (only its labels may see the window)
    assert np.array_equal(first.contact_ids, again.contact_ids)
    assert np.array_equal(first.X, again.X)


def test_labels_are_the_goal_within_the_window_only():
    person, other = make_contact(email="e@example.com"), make_contact(email="f@example.com")
    for contact, day in ((person, AS_OF + dt.timedelta(days=29)), (other, AS_OF + dt.timedelta(days=30))):
        DailyActivity.objects.create(contact=contact, day=day, kind=ActivityKind.EVENT, key=GOAL, count=1)
    model = PredictionModel(goal=Goal.EVENT, event_name=GOAL, horizon_days=30)
    assert training.positives(model=model, start=AS_OF, end=AS_OF + dt.timedelta(days=30)) == {person.pk}


def engaged_source(ctx: features.FeatureContext) -> features.FeatureBlock:
    """A feature source for the test below: one column, 1.0 for everyone."""
    return features.FeatureBlock(
        names=["test:one"], labels=["one"], values=np.ones((len(ctx.contact_ids), 1))
    )


def test_a_feature_source_is_one_function_in_the_settings(settings):
    person = make_contact(email="g@example.com")
    settings.PREDICTION_FEATURE_SOURCES = [
        *settings.PREDICTION_FEATURE_SOURCES,
        "tests.predictions.test_features.engaged_source",
    ]
    block = _features([person.pk])
    assert block.names[-1] == "test:one" and block.values[0, -1] == 1.0
