"""Scores where other apps show or use them: the contact list's sortable column, segment
conditions (`score`), the drain's derived-data hook."""

import re

import pytest

from contacts.models import ListColumns
from scoring import services
from segments import services as segment_services
from segments.definition import compiler
from tests.factories import make_contact, profile_update, stored_page
from tests.scoring.helpers import make_model
from tests.segments.helpers import matches, members, one

pytestmark = pytest.mark.django_db

PRICING = [{"label": "Pricing", "kind": "page", "path": "/pricing", "points": 10}]


def scored(views: dict[str, int]):
    model = make_model(name="Enterprise", engagement=PRICING)
    contacts = {}
    for name, n in views.items():
        contacts[name] = make_contact(first_name=name)
        for _ in range(n):
            stored_page(contacts[name], "/pricing")
    services.scores_refresh(contact_ids=[c.pk for c in contacts.values()])
    return model, contacts


def names(response) -> list[str]:
    return re.findall(r'data-column="name"[^>]*>\s*<a href="[^"]+">([^<]+)</a>', response.content.decode())


def test_the_contact_list_shows_and_sorts_by_score(sales_client, sales_user, django_assert_max_num_queries):
    model, _ = scored({"Ada": 3, "Bob": 0, "Cy": 7, "Di": 1})
    key = f"score_{model.pk}"
    ListColumns.objects.create(user=sales_user, entity="contact", columns=["name", key])
    html = sales_client.get("/contacts/").content.decode()
    assert "Enterprise score" in html
    assert re.findall(rf'data-column="{key}">([^<]*)</td>', html).count("70") == 1
    by_score = sales_client.get(f"/contacts/?sort=-{key}")
    assert [n.split()[0] for n in names(by_score)] == ["Cy", "Ada", "Di", "Bob"]
    filtered = sales_client.get(f"/contacts/?col_{key}=20&sort=-{key}")
    assert [n.split()[0] for n in names(filtered)] == ["Cy", "Ada"]


def test_a_segment_on_a_score(django_capture_on_commit_callbacks):
    model, c = scored({"Ada": 3, "Bob": 0, "Cy": 7})
    at_least_30 = one({"type": "score", "model": model.pk, "op": "gte", "value": 30})
    below_30 = one({"type": "score", "model": model.pk, "op": "lt", "value": 30})
    assert matches(at_least_30) == {c["Ada"].pk, c["Cy"].pk}
    assert matches(below_30) == {c["Bob"].pk}  # Bob has no row: a score of 0
    tree = compiler.parse(at_least_30)
    assert compiler.describe(tree.children[0]) == "Lead score “Enterprise” ≥ 30"
    with pytest.raises(compiler.DefinitionError):
        compiler.parse(one({"type": "score", "model": model.pk, "op": "gte", "value": "30"}))


def test_a_segment_on_a_score_sees_the_score_the_same_events_gave(admin_user):
    # given a segment of people scoring at least 20, and a person scoring 10
    model, c = scored({"Ada": 1})
    segment = segment_services.segment_create(
        actor=admin_user,
        name="Hot",
        definition=one({"type": "score", "model": model.pk, "op": "gte", "value": 20}),
    )
    segment_services.segment_refresh(segment=segment)
    assert members(segment) == set()
    # when another pricing view arrives and the drain runs
    stored_page(c["Ada"], "/pricing")
    profile_update(c["Ada"])
    segment_services.profile_updates_process()
    # then the score was refreshed before the segment looked: Ada is in
    assert members(segment) == {c["Ada"].pk}


def test_a_deal_card_shows_the_primary_contacts_score_and_its_change_this_week(sales_client):
    import datetime as dt

    from django.utils import timezone

    from tests.factories import make_deal

    model, c = scored({"Ada": 2, "Bob": 0})
    # a week ago Ada scored 5 (recorded that day)
    from scoring.models import ScoreDay

    week_ago = (timezone.now() - dt.timedelta(days=8)).astimezone(dt.UTC).date()
    ScoreDay.objects.create(model=model, contact=c["Ada"], day=week_ago, score=5)
    deal = make_deal(contact=c["Ada"])
    unscored = make_deal(title="Bob's", contact=c["Bob"])
    html = sales_client.get(f"/deals/signals/?deals={deal.pk},{unscored.pk}").content.decode()
    assert 'data-testid="signal-score"' in html
    assert "Enterprise 20 (+15 this week)" in html
    bob_slot = html.split(f'id="deal-signals-{unscored.pk}"')[1]
    assert "signal-score" not in bob_slot


def test_a_hot_deal_rule_can_ask_for_a_lead_score(admin_user, django_capture_on_commit_callbacks):
    from accounts.models import Notification
    from identity.models import HotRule
    from identity.services import hot
    from tests.factories import make_deal

    model, c = scored({"Ada": 1})
    owner = admin_user
    make_deal(contact=c["Ada"], owner=owner)
    # a rule: two pricing views in 24 h AND a score of at least 30
    rule = hot.hot_rule_create(
        actor=admin_user,
        name="pricing+score",
        path_contains="/pricing",
        min_views=2,
        window_hours=24,
        score_model_id=model.pk,
        min_score=30,
    )
    HotRule.objects.exclude(pk=rule.pk).delete()  # the seeded "pricing" rule asks for no score
    stored_page(c["Ada"], "/pricing")  # two views now, but a score of 20
    assert hot.hot_deals_notify(contact_ids=[c["Ada"].pk]) == 0
    # when the next view lifts the score to 30, the scores' refresh asks the rules again
    stored_page(c["Ada"], "/pricing")
    with django_capture_on_commit_callbacks(execute=True):
        services.scores_refresh(contact_ids=[c["Ada"].pk])
    notes = list(Notification.objects.filter(user=owner))
    assert len(notes) == 1 and "lead score of at least 30" in notes[0].body
    # and a rule's score half is validated: both or neither, a model that exists
    from core.errors import DomainError

    with pytest.raises(DomainError) as bad:
        hot.hot_rule_update(
            actor=admin_user, rule=rule, name="x", path_contains="/p", score_model_id=999, min_score=None
        )
    assert set(bad.value.fields) == {"score_model_id", "min_score"}


def test_the_hot_rule_form_offers_the_score_models(admin_client):
    model = make_model(name="Enterprise", engagement=PRICING)
    html = admin_client.get("/settings/identity/").content.decode()
    assert f'<option value="{model.pk}">Enterprise</option>' in html


def test_the_deal_signal_hook_costs_a_fixed_number_of_queries(django_assert_max_num_queries):
    from scoring import selectors
    from tests.factories import make_deal

    _model, c = scored({f"P{i}": i % 3 for i in range(20)})
    deals = [make_deal(title=name, contact=contact) for name, contact in c.items()]
    with django_assert_max_num_queries(4):
        signals = selectors.deal_signals(deal_ids=[d.pk for d in deals])
    assert len(signals) == sum(1 for i in range(20) if i % 3)


@pytest.mark.parametrize("n", [3, 30])
def test_the_score_column_costs_a_fixed_number_of_queries(
    sales_client, sales_user, django_assert_max_num_queries, n
):
    model, _ = scored({f"P{i}": i % 4 for i in range(n)})
    key = f"score_{model.pk}"
    ListColumns.objects.create(user=sales_user, entity="contact", columns=["name", key])
    sales_client.get("/contacts/")
    with django_assert_max_num_queries(13):  # contacts' own 12 (tests/contacts) + the models' one
        html = sales_client.get(f"/contacts/?sort=-{key}").content.decode()
    assert html.count('data-record="') == n


def test_an_admin_adds_a_hot_rule_with_a_score_from_the_settings_page(admin_client):
    from identity.models import HotRule

    model = make_model(name="Enterprise", engagement=PRICING)
    data = {
        "name": "scored",
        "path_contains": "/pricing",
        "min_views": "1",
        "window_hours": "24",
        "score_model_id": str(model.pk),
        "min_score": "40",
        "enabled": "on",
    }
    response = admin_client.post("/settings/identity/hot-rules/", {f"new-{k}": v for k, v in data.items()})
    assert response.status_code == 302
    rule = HotRule.objects.get(name="scored")
    assert (rule.score_model_id, rule.min_score) == (model.pk, 40)
    half = {**data, "name": "half", "score_model_id": ""}
    bad = admin_client.post("/settings/identity/hot-rules/", {f"new-{k}": v for k, v in half.items()})
    assert bad.status_code == 422
    assert "Pick a score model" in bad.content.decode()
    assert not HotRule.objects.filter(name="half").exists()
