"""Score model validation, permissions, deletion and erasure."""

import pytest

from core.errors import DomainError, Forbidden
from privacy import services as privacy_services
from scoring import services
from scoring.models import Score, ScoreDay, ScoreModel
from tests.factories import make_contact, stored_page
from tests.scoring.helpers import make_model

pytestmark = pytest.mark.django_db

PRICING = [{"kind": "page", "path": "/pricing", "points": 5}]


@pytest.mark.parametrize(
    ("fit", "engagement", "field", "fragment"),
    [
        ([], [], "fit_rules", "at least one rule"),
        ("nope", [], "fit_rules", "A list of rules"),
        (
            [{"field": "shoe_size", "op": "equals", "value": "9", "points": 1}],
            [],
            "fit_rules",
            "Rule 1: `field`",
        ),
        ([{"field": "title", "op": "gt", "value": 3, "points": 1}], [], "fit_rules", "`op` for this field"),
        ([{"field": "title", "op": "equals", "value": "x", "points": 0}], [], "fit_rules", "not 0"),
        ([{"field": "custom.n", "op": "gt", "value": "ten", "points": 1}], [], "fit_rules", "is a number"),
        ([], [{"kind": "email", "points": 1}], "engagement_rules", "`kind` is page or event"),
        ([], [{"kind": "page", "points": 1}], "engagement_rules", "`path` is required"),
        (
            [],
            [{"kind": "page", "path": "/p", "points": 1, "half_life_days": 3, "within_days": 9}],
            "engagement_rules",
            "not both",
        ),
        (
            [],
            [{"kind": "event", "event": "X", "points": 1, "half_life_days": 0}],
            "engagement_rules",
            "1 to 3650",
        ),
        (
            [],
            [{"kind": "event", "event": "X", "points": 1, "where": [{"property": "p", "op": "like"}]}],
            "engagement_rules",
            "property condition",
        ),
    ],
)
def test_invalid_rules_are_refused_with_the_rule_and_the_reason(admin_user, fit, engagement, field, fragment):
    with pytest.raises(DomainError) as refused:
        services.score_model_create(actor=admin_user, name="M", fit_rules=fit, engagement_rules=engagement)
    assert any(fragment in message for message in refused.value.fields[field]), refused.value.fields
    assert not ScoreModel.objects.exists()


def test_caps_and_names_are_checked(admin_user):
    with pytest.raises(DomainError) as refused:
        services.score_model_create(
            actor=admin_user, name=" ", engagement_rules=PRICING, total_cap=0, fit_cap="x"
        )
    assert set(refused.value.fields) == {"name", "total_cap", "fit_cap"}
    services.score_model_create(actor=admin_user, name="Lead", engagement_rules=PRICING)
    with pytest.raises(DomainError) as taken:
        services.score_model_create(actor=admin_user, name="lead", engagement_rules=PRICING)
    assert taken.value.http_status == 409


def test_only_admin_and_marketing_change_models(sales_user, marketing_user):
    with pytest.raises(Forbidden):
        services.score_model_create(actor=sales_user, name="M", engagement_rules=PRICING)
    model = services.score_model_create(actor=marketing_user, name="M", engagement_rules=PRICING)
    with pytest.raises(Forbidden):
        services.score_model_delete(actor=sales_user, model=model)


def test_an_update_keeps_the_fields_not_given(admin_user):
    model = services.score_model_create(actor=admin_user, name="M", engagement_rules=PRICING, total_cap=50)
    model = services.score_model_update(actor=admin_user, model=model, description="Per product line")
    assert (model.total_cap, model.engagement_rules, model.description) == (50, PRICING, "Per product line")


def test_deleting_a_model_deletes_its_scores(admin_user):
    contact = make_contact()
    stored_page(contact, "/pricing")
    model = make_model(engagement=PRICING)
    services.scores_refresh(contact_ids=[contact.pk])
    assert Score.objects.filter(model=model).exists()
    services.score_model_delete(actor=admin_user, model=model)
    assert not Score.objects.exists() and not ScoreDay.objects.exists()


def test_erasure_removes_the_persons_scores(admin_user):
    contact = make_contact(email="erase.me@example.org")
    stored_page(contact, "/pricing")
    model = make_model(engagement=PRICING)
    services.scores_refresh(contact_ids=[contact.pk])
    assert Score.objects.filter(model=model, contact=contact).exists()
    request = privacy_services.person_erase_request(actor=admin_user, contact=contact)
    privacy_services.person_erase(request_id=request.pk)
    assert not Score.objects.filter(contact_id=contact.pk).exists()
    assert not ScoreDay.objects.filter(contact_id=contact.pk).exists()
