"""The realtime path (a contact rescored after each of its events) and the full recompute give the
same scores over random event sequences, and every explanation adds up to its score."""

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contacts.models import Contact
from events.models import Event
from identity.models import ContactEvent, DailyActivity
from scoring import services
from scoring.models import ScoreModel
from tests.factories import make_contact, stored_page, stored_track
from tests.scoring.helpers import adds_up, make_model, stored_scores

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)

ENGAGEMENT = [
    {
        "label": "Pricing",
        "kind": "page",
        "match": "starts_with",
        "path": "/pricing",
        "points": 7,
        "half_life_days": 3,
        "max_points": 40,
    },
    {"label": "Docs", "kind": "page", "match": "contains", "path": "docs", "points": 1, "within_days": 5},
    {
        "label": "Pro orders",
        "kind": "event",
        "event": "Order Completed",
        "points": 11,
        "half_life_days": 2,
        "where": [{"property": "plan", "op": "equals", "value": "pro"}],
    },
    {
        "label": "Big orders",
        "kind": "event",
        "event": "Order Completed",
        "points": 3,
        "where": [{"property": "total", "op": "gte", "value": 50}],
    },
    {"label": "Unsubscribed", "kind": "event", "event": "Unsubscribed", "points": -9},
]

events = st.lists(
    st.tuples(
        st.integers(0, 2),  # which contact
        st.sampled_from(
            ["/pricing", "/pricing/team", "/docs/start", "/blog", "Order Completed", "Unsubscribed"]
        ),
        st.integers(0, 12),  # days ago
        st.sampled_from(["pro", "free", None]),
        st.sampled_from([0, 49, 50, 120.5, "n/a"]),
    ),
    max_size=15,
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sequence=events, titles=st.lists(st.sampled_from(["VP Sales", "Engineer", ""]), min_size=3, max_size=3)
)
def test_realtime_scores_equal_the_full_recompute(sequence, titles):
    ContactEvent.objects.all().delete()
    DailyActivity.objects.all().delete()
    Event.objects.all().delete()
    ScoreModel.objects.all().delete()
    Contact.objects.all().delete()
    contacts = [make_contact(title=title) for title in titles]
    model = make_model(
        name="M",
        fit=[
            {"label": "VP", "field": "title", "op": "starts_with", "value": "vp", "points": 15},
            {"label": "No title", "field": "title", "op": "is_not_set", "points": -5},
        ],
        engagement=ENGAGEMENT,
        engagement_cap=60,
        total_cap=70,
    )
    services.scores_refresh(contact_ids=[c.pk for c in contacts], now=NOW)
    for who, what, days_ago, plan, total in sequence:
        contact = contacts[who]
        at = NOW - dt.timedelta(days=days_ago, minutes=1)
        if what.startswith("/"):
            stored_page(contact, what, at=at)
        else:
            properties = {"total": total} | ({"plan": plan} if plan else {})
            stored_track(contact, what, properties=properties, at=at)
        services.scores_refresh(contact_ids=[contact.pk], now=NOW)
    realtime = stored_scores(model)
    services.score_model_recompute(model_id=model.pk, now=NOW)
    assert stored_scores(model) == realtime
    for score, _fit, _engagement, explanation in realtime.values():
        assert adds_up(explanation, score)
        assert 0 <= score <= 70
