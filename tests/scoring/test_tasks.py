"""Lead scores through a real Celery worker: an ingested event moves its contact's score, and
saving a model recomputes it."""

import time

import pytest

from identity.models import ProfileUpdate
from scoring import services
from scoring.models import ScoreModel
from tests.factories import make_contact, page_payload, send, track_payload
from tests.scoring.helpers import score_of


def wait_for(predicate, worker, *, seconds: float = 30):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, worker.output()[-3000:]
        time.sleep(0.05)


@pytest.mark.django_db(transaction=True)
def test_an_ingested_event_updates_the_score_in_the_worker(client, source, celery_worker):
    # given a model scoring pricing views and demo requests, computed by the worker on save
    model = services.score_model_create(
        actor=None,
        name="Enterprise",
        engagement_rules=[
            {"label": "Pricing", "kind": "page", "path": "/pricing", "points": 5},
            {
                "label": "Demo",
                "kind": "event",
                "event": "Demo Requested",
                "points": 20,
                "where": [{"property": "seats", "op": "gte", "value": 10}],
            },
        ],
    )
    wait_for(lambda: ScoreModel.objects.get(pk=model.pk).recomputed_at is not None, celery_worker)
    # when a visitor's events arrive through /v1
    send(
        client,
        source,
        page_payload("/pricing", anonymous_id="v1"),
        track_payload("Demo Requested", anonymous_id="v1", properties={"seats": 25}),
    )
    # then the worker stitches them, scores the contact, and leaves no update behind
    from identity.models import Identity

    wait_for(lambda: Identity.objects.filter(value="v1").exists(), celery_worker)
    contact = Identity.objects.get(value="v1").contact
    wait_for(lambda: score_of(model, contact) == 25, celery_worker)
    wait_for(lambda: not ProfileUpdate.objects.exists(), celery_worker)


@pytest.mark.django_db(transaction=True)
def test_a_crm_edit_updates_the_score_in_the_worker(celery_worker, admin_user):
    from contacts import services as contact_services

    contact = make_contact(email="c@x.io", title="Engineer")
    model = services.score_model_create(
        actor=None, name="Fit", fit_rules=[{"field": "title", "op": "contains", "value": "vp", "points": 30}]
    )
    wait_for(lambda: ScoreModel.objects.get(pk=model.pk).recomputed_at is not None, celery_worker)
    assert score_of(model, contact) == 0
    contact_services.contact_update(contact=contact, actor=admin_user, title="VP Sales")
    wait_for(lambda: score_of(model, contact) == 30, celery_worker)
