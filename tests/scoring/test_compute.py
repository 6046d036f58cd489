"""Scores from fit and engagement rules: points, caps, decay, time frames, explanations that add
up, and the realtime path, the full recompute and the daily decay refresh agreeing."""

import datetime as dt

import pytest
from django.utils import timezone

from contacts.models import Contact, CustomField
from identity.models import ProfileUpdate
from scoring import services
from scoring.models import Score, ScoreDay
from segments import services as segment_services
from tests.factories.contacts import make_company, make_contact
from tests.factories.identity import add_rollup, profile_update, stored_page, stored_track
from tests.scoring.helpers import adds_up, make_model, score_of, stored_scores

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)
TODAY = NOW.date()


def refresh(*contacts, now=NOW):
    return services.scores_refresh(contact_ids=[c.pk for c in contacts], now=now)


def test_fit_rules_on_contact_company_and_custom_fields_add_their_points():
    # given a model with fit rules on a built-in field, a custom field, a trait and the company
    CustomField.objects.create(entity="company", key="employees", label="Employees", field_type="number")
    CustomField.objects.create(entity="contact", key="plan", label="Plan", field_type="text")
    acme = make_company(name="Acme", industry="Software", custom_fields={"employees": 800})
    ada = make_contact(
        email="ada@acme.io", title="VP Engineering", company=acme, custom_fields={"plan": "Pro"}
    )
    Contact.objects.filter(pk=ada.pk).update(traits={"role": "buyer"})  # tracked, not typed
    bob = make_contact(email="bob@gmail.com", title="Student")
    model = make_model(
        fit=[
            {"label": "VP", "field": "title", "op": "contains", "value": "vp", "points": 10},
            {"label": "Pro plan", "field": "custom.plan", "op": "equals", "value": "pro", "points": 5},
            {"label": "Buyer", "field": "trait.role", "op": "in", "value": ["Buyer", "owner"], "points": 3},
            {
                "label": "Software",
                "field": "company.industry",
                "op": "equals",
                "value": "software",
                "points": 7,
            },
            {"label": "Big", "field": "company.custom.employees", "op": "gte", "value": 500, "points": 8},
            {"label": "Free mail", "field": "email", "op": "ends_with", "value": "@gmail.com", "points": -4},
            {"label": "Student", "field": "title", "op": "equals", "value": "student", "points": -20},
        ],
        total_cap=100,
    )
    # when the contacts are scored
    refresh(ada, bob)
    # then each gets the points of the rules that hold, and the explanation adds up
    row = Score.objects.get(model=model, contact=ada)
    assert (row.score, row.fit, row.engagement) == (33, 33, 0)
    assert [line["label"] for line in row.explanation] == ["VP", "Pro plan", "Buyer", "Software", "Big"]
    assert adds_up(row.explanation, row.score)
    # bob's -24 is floored at 0, with the floor as a line of its own
    bob_row = Score.objects.get(model=model, contact=bob)
    assert bob_row.score == 0 and bob_row.fit == -24
    assert adds_up(bob_row.explanation, 0)
    assert bob_row.explanation[-1]["label"] == "A score is never below 0"


def test_a_contact_no_rule_applies_to_scores_0_with_no_lines():
    model = make_model(fit=[{"field": "title", "op": "contains", "value": "cto", "points": 10}])
    nobody = make_contact(title="Intern")
    refresh(nobody)
    row = Score.objects.get(model=model, contact=nobody)  # a row for everyone: the list sorts on it
    assert (row.score, row.explanation) == (0, [])


def test_engagement_points_per_occurrence_capped_per_rule_and_per_part():
    ada = make_contact()
    add_rollup(ada, day=TODAY, key="/pricing", count=3)
    add_rollup(ada, day=TODAY - dt.timedelta(days=2), key="/pricing/enterprise", count=4)
    add_rollup(ada, day=TODAY, key="/docs", count=50)
    add_rollup(ada, day=TODAY, key="Signed Up", count=1, kind="event")
    model = make_model(
        engagement=[
            {
                "label": "Pricing",
                "kind": "page",
                "match": "starts_with",
                "path": "/pricing",
                "points": 5,
                "max_points": 30,
            },
            {"label": "Docs", "kind": "page", "match": "contains", "path": "docs", "points": 1},
            {"label": "Signed up", "kind": "event", "event": "Signed Up", "points": 20},
        ],
        engagement_cap=80,
        total_cap=70,
    )
    refresh(ada)
    row = Score.objects.get(model=model, contact=ada)
    lines = {line["label"]: line for line in row.explanation}
    assert (
        lines["Pricing"]["points"] == 30
        and lines["Pricing"]["raw"] == 35
        and lines["Pricing"]["occurrences"] == 7
    )
    assert lines["Docs"]["points"] == 50
    assert lines["Signed up"]["points"] == 20
    assert lines["Engagement capped at 80"]["points"] == -20
    assert lines["Score capped at 70"]["points"] == -10
    assert row.score == 70 and row.engagement == 80
    assert adds_up(row.explanation, row.score)


def test_decay_halves_points_every_half_life_and_time_frames_drop_old_occurrences():
    ada = make_contact()
    add_rollup(ada, day=TODAY, key="/pricing", count=1)
    add_rollup(ada, day=TODAY - dt.timedelta(days=30), key="/pricing", count=2)
    add_rollup(ada, day=TODAY - dt.timedelta(days=60), key="/pricing", count=4)
    add_rollup(ada, day=TODAY - dt.timedelta(days=10), key="Webinar", count=1, kind="event")
    add_rollup(ada, day=TODAY - dt.timedelta(days=40), key="Webinar", count=1, kind="event")
    model = make_model(
        engagement=[
            {"label": "Pricing", "kind": "page", "path": "/pricing", "points": 8, "half_life_days": 30},
            {"label": "Webinar", "kind": "event", "event": "Webinar", "points": 10, "within_days": 30},
        ],
        total_cap=1000,
    )
    refresh(ada)
    lines = {line["label"]: line for line in Score.objects.get(model=model, contact=ada).explanation}
    # 8 + 2 x 4 + 4 x 2 = 24 decayed points; only the webinar of 10 days ago is in the time frame
    assert lines["Pricing"]["points"] == 24 and lines["Pricing"]["occurrences"] == 7
    assert lines["Webinar"]["points"] == 10 and lines["Webinar"]["occurrences"] == 1
    assert score_of(model, ada) == 34


def test_track_rules_with_property_conditions_read_the_event_log():
    ada = make_contact()
    stored_track(
        ada, "Order Completed", properties={"plan": "pro", "total": 120}, at=NOW - dt.timedelta(hours=1)
    )
    stored_track(
        ada, "Order Completed", properties={"plan": "free", "total": 0}, at=NOW - dt.timedelta(hours=2)
    )
    stored_track(
        ada, "Order Completed", properties={"plan": "pro", "total": "lots"}, at=NOW - dt.timedelta(hours=3)
    )
    model = make_model(
        engagement=[
            {
                "label": "Big pro orders",
                "kind": "event",
                "event": "Order Completed",
                "where": [
                    {"property": "plan", "op": "equals", "value": "pro"},
                    {"property": "total", "op": "gt", "value": 100},
                ],
                "points": 25,
            },
            {
                "label": "Any order",
                "kind": "event",
                "event": "Order Completed",
                "where": [{"property": "plan", "op": "exists"}],
                "points": 1,
            },
        ],
    )
    refresh(ada)
    lines = {line["label"]: line for line in Score.objects.get(model=model, contact=ada).explanation}
    assert lines["Big pro orders"]["occurrences"] == 1 and lines["Big pro orders"]["points"] == 25
    assert lines["Any order"]["occurrences"] == 3


def test_decay_moves_scores_with_no_event_through_the_daily_refresh():
    # given a score computed today from a view decaying by half every 2 days
    ada = make_contact()
    stored_page(ada, "/pricing", at=NOW - dt.timedelta(hours=1))
    model = make_model(
        engagement=[
            {"label": "Pricing", "kind": "page", "path": "/pricing", "points": 40, "half_life_days": 2}
        ]
    )
    services.score_model_recompute(model_id=model.pk, now=NOW)
    assert score_of(model, ada) == 40
    # when the clock moves on (frozen at two later instants) with no new event
    assert services.scores_decay_refresh(now=NOW + dt.timedelta(hours=1)) == 0  # same UTC day: nothing to do
    assert services.scores_decay_refresh(now=NOW + dt.timedelta(days=2)) == 1
    # then the score fell by half, and again two days later, and the change is recorded per day
    assert score_of(model, ada) == 20
    services.scores_decay_refresh(now=NOW + dt.timedelta(days=4))
    assert score_of(model, ada) == 10
    assert dict(ScoreDay.objects.filter(model=model, contact=ada).values_list("day", "score")) == {
        TODAY: 40,
        TODAY + dt.timedelta(days=2): 20,
        TODAY + dt.timedelta(days=4): 10,
    }
    # and a time frame drops the score to nothing once the view is 7 days old
    model.engagement_rules = [{"kind": "page", "path": "/pricing", "points": 40, "within_days": 7}]
    model.save()
    services.score_model_recompute(model_id=model.pk, now=NOW)
    services.scores_decay_refresh(now=NOW + dt.timedelta(days=6))
    assert score_of(model, ada) == 40
    services.scores_decay_refresh(now=NOW + dt.timedelta(days=7))
    assert Score.objects.get(model=model, contact=ada).explanation == []
    assert score_of(model, ada) == 0


def test_the_segments_drain_updates_scores_before_segments_evaluate(django_assert_max_num_queries):
    ada = make_contact()
    stored_page(ada, "/pricing")
    model = make_model(engagement=[{"label": "Pricing", "kind": "page", "path": "/pricing", "points": 5}])
    profile_update(ada)
    segment_services.profile_updates_process()
    assert score_of(model, ada) == 5
    assert not ProfileUpdate.objects.exists()


def test_a_merged_contact_loses_its_scores():
    winner = make_contact()
    loser = make_contact()
    model = make_model(fit=[{"field": "is_identified", "op": "equals", "value": True, "points": 1}])
    refresh(winner, loser)
    assert Score.objects.filter(model=model).count() == 2
    loser.merged_into = winner
    loser.save()
    refresh(winner, loser)
    assert list(Score.objects.filter(model=model).values_list("contact_id", flat=True)) == [winner.pk]


def test_full_recompute_matches_the_realtime_path():
    contacts = [make_contact(title="VP" if i % 2 else "Dev") for i in range(6)]
    for i, contact in enumerate(contacts):
        for day in range(i):
            add_rollup(contact, day=TODAY - dt.timedelta(days=day * 3), key="/pricing", count=i)
    model = make_model(
        fit=[{"field": "title", "op": "equals", "value": "vp", "points": 7}],
        engagement=[{"kind": "page", "path": "/pricing", "points": 3, "half_life_days": 5, "max_points": 40}],
    )
    refresh(*contacts)
    realtime = stored_scores(model)
    Score.objects.all().delete()
    services.score_model_recompute(model_id=model.pk, now=NOW)
    assert stored_scores(model) == realtime
    assert all(adds_up(explanation, score) for score, _, _, explanation in realtime.values())


def test_change_this_week_is_the_score_now_minus_a_week_ago():
    from scoring import selectors

    ada = make_contact(title="VP")
    model = make_model(fit=[{"field": "title", "op": "equals", "value": "vp", "points": 30}])
    refresh(ada, now=NOW - dt.timedelta(days=9))
    ada.title = "VP"
    model.fit_rules = [{"field": "title", "op": "equals", "value": "vp", "points": 45}]
    model.save()
    refresh(ada, now=NOW)
    [(m, score, change)] = selectors.scores_of_contacts(contact_ids=[ada.pk], now=NOW)[ada.pk]
    assert (m, score, change) == (model, 45, 15)
    assert timezone.now()  # the clock itself is untouched


def test_the_daily_refresh_scores_live_contacts_that_have_no_row_yet():
    model = make_model(engagement=[{"kind": "page", "path": "/pricing", "points": 3, "half_life_days": 9}])
    services.score_model_recompute(model_id=model.pk, now=NOW)
    late = make_contact()  # created without passing through the drain (a safety net)
    services.scores_decay_refresh(now=NOW + dt.timedelta(days=1))
    assert Score.objects.filter(model=model, contact=late, score=0).exists()


def test_a_company_edit_rescores_its_contacts_through_the_profile_update_path(
    admin_user, django_capture_on_commit_callbacks
):
    from contacts import services as contact_services

    acme = make_company(name="Acme", industry="Retail")
    ada = make_contact(company=acme)
    model = make_model(fit=[{"field": "company.industry", "op": "equals", "value": "software", "points": 25}])
    refresh(ada)
    assert score_of(model, ada) == 0
    # when a rep edits the company, CONTACT_CHANGE_HOOKS mark its contacts after commit
    with django_capture_on_commit_callbacks(execute=True):
        contact_services.company_update(company=acme, actor=admin_user, industry="Software")
    assert ProfileUpdate.objects.filter(contact=ada).exists()
    # and the drain rescores them
    segment_services.profile_updates_process()
    assert score_of(model, ada) == 25


def test_a_merge_moves_no_score_twice_and_the_drain_rescores_the_winner(admin_user):
    from contacts.services import merging

    winner = make_contact(email="w@x.io")
    loser = make_contact(email="l@x.io")
    stored_page(loser, "/pricing")
    model = make_model(engagement=[{"kind": "page", "path": "/pricing", "points": 5}])
    refresh(winner, loser)
    assert (score_of(model, winner), score_of(model, loser)) == (0, 5)
    # the merge repoints rows generically; the winner already has a score row, so the loser's stays
    merging.contact_merge(winner=winner, loser=loser, field_choices={}, actor=admin_user)
    profile_update(winner)
    segment_services.profile_updates_process()
    # the loser's history now counts for the winner, and the tombstone holds no score
    assert score_of(model, winner) == 5
    assert list(Score.objects.filter(model=model).values_list("contact_id", flat=True)) == [winner.pk]
