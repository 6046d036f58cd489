"""End to end: events through the real /v1 API, stitched by a real Celery worker."""

import time

import pytest

from contacts.models import ContactMerge
from events.models import Source
from identity.models import IdentityWarning, WarningKind
from pipeline.models import Deal
from tests.factories import identify_payload, make_contact, make_pipeline, page_payload, send
from tests.identity.helpers import event_paths, identities, live, wait_for_worker

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_visitors_pages_and_identify_become_one_lead_the_crm_shows(client, admin_client, celery_worker):
    source = Source.objects.create(name="Website")
    first = page_payload("/landing", anonymous_id="e2e-a", at=0)
    first["context"] = {"campaign": {"source": "ads", "name": "autumn"}}
    send(client, source, first, page_payload("/pricing", anonymous_id="e2e-a", at=1))
    wait_for_worker(celery_worker)
    send(
        client,
        source,
        identify_payload(
            {"email": "Eve@Example.com", "firstName": "Eve"}, anonymous_id="e2e-a", user_id="eve", at=2
        ),
    )
    wait_for_worker(celery_worker)
    (person,) = live()
    assert person.is_identified and person.email == "eve@example.com"
    assert event_paths(person) == ["/landing", "/pricing"]
    assert person.attribution["utm_source"] == "ads"
    # the CRM shows the identified person
    response = admin_client.get(person.get_absolute_url())
    assert response.status_code == 200
    assert b"eve@example.com" in response.content


def test_a_crm_contact_and_a_shared_device_through_the_worker(client, admin_user, celery_worker):
    source = Source.objects.create(name="Website")
    crm = make_contact(email="max@example.com", owner=admin_user)
    stage = make_pipeline().stages.first()
    deal = Deal.objects.create(pipeline=stage.pipeline, stage=stage, title="Max's", contact=crm)
    send(
        client,
        source,
        page_payload("/", anonymous_id="tablet", at=0),
        identify_payload({"email": "MAX@example.com"}, anonymous_id="tablet", user_id="max", at=1),
        identify_payload({"email": "zoe@example.com"}, anonymous_id="tablet", user_id="zoe", at=2),
        page_payload("/zoe", anonymous_id="tablet", user_id="zoe", at=3),
    )
    wait_for_worker(celery_worker)
    people = {c.pk: c for c in live()}
    assert len(people) == 2 and crm.pk in people
    assert ("anonymous_id", "tablet") in identities(crm)
    assert Deal.objects.get(pk=deal.pk).contact_id == crm.pk
    (zoe,) = [c for pk, c in people.items() if pk != crm.pk]
    assert identities(zoe) == {("user_id", "zoe"), ("email", "zoe@example.com")}
    assert event_paths(zoe) == ["/zoe"]
    assert ContactMerge.objects.count() == 1
    assert IdentityWarning.objects.filter(kind=WarningKind.REFUSED_MERGE).exists()


def test_a_deal_contact_viewing_pricing_twice_notifies_the_owner_once(client, admin_user, celery_worker):
    from django.utils import timezone

    from accounts.models import Notification
    from tests.factories import default_hot_rule

    default_hot_rule()
    source = Source.objects.create(name="Website")
    crm = make_contact(email="hot@example.com", owner=admin_user)
    stage = make_pipeline().stages.first()
    deal = Deal.objects.create(
        pipeline=stage.pipeline, stage=stage, title="Hot one", contact=crm, owner=admin_user
    )
    now = timezone.now().isoformat()
    send(
        client,
        source,
        identify_payload({"email": "hot@example.com"}, anonymous_id="hot-a", user_id="hot", timestamp=now),
    )
    send(client, source, page_payload("/pricing", anonymous_id="hot-a", timestamp=now))
    wait_for_worker(celery_worker)
    assert not Notification.objects.filter(user=admin_user).exists()  # one view is not "hot" yet
    send(client, source, page_payload("/pricing/enterprise", anonymous_id="hot-a", timestamp=now))
    wait_for_worker(celery_worker)
    # the owner hears of it just after the batch commits (the queue empties a moment before)
    deadline = time.monotonic() + 10
    while not Notification.objects.filter(user=admin_user).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    (note,) = Notification.objects.filter(user=admin_user)
    assert "Hot one" in f"{note.title} {note.body}" and str(deal.pk) in note.url
    # more views in the same window do not notify again
    send(client, source, page_payload("/pricing", anonymous_id="hot-a", timestamp=now))
    # once the worker has finished everything it was given, a second notification would exist
    celery_worker.wait_until_idle()
    assert Notification.objects.filter(user=admin_user).count() == 1


def _poll(condition, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_pricing_browsed_anonymously_notifies_the_owner_once_the_visitor_signs_in(
    client, admin_user, celery_worker
):
    from django.utils import timezone

    from accounts.models import Notification
    from identity.models import ContactEvent
    from tests.factories import default_hot_rule

    default_hot_rule()
    source = Source.objects.create(name="Website")
    crm = make_contact(email="browse@example.com", owner=admin_user)
    stage = make_pipeline().stages.first()
    Deal.objects.create(pipeline=stage.pipeline, stage=stage, title="Browser", contact=crm, owner=admin_user)
    now = timezone.now().isoformat()
    # given a visitor who viewed pricing twice before signing in
    send(client, source, *(page_payload("/pricing", anonymous_id="br-a", timestamp=now) for _ in range(2)))
    wait_for_worker(celery_worker)
    # when the visitor signs in as the deal's contact
    send(
        client, source, identify_payload({"email": "browse@example.com"}, anonymous_id="br-a", timestamp=now)
    )
    # then the owner is told, once the batch is committed
    _poll(lambda: Notification.objects.filter(user=admin_user).exists())
    # and a second device stitched in the same window does not tell them again
    send(client, source, *(page_payload("/pricing", anonymous_id="br-b", timestamp=now) for _ in range(2)))
    wait_for_worker(celery_worker)
    send(
        client, source, identify_payload({"email": "browse@example.com"}, anonymous_id="br-b", timestamp=now)
    )
    wait_for_worker(celery_worker)
    assert ContactMerge.objects.filter(winner=crm).count() == 2
    # one more event after it: the worker runs one task at a time, so once this one is stitched
    # the merge batch's after-commit evaluation has run
    send(client, source, page_payload("/docs", anonymous_id="br-b", timestamp=now))
    _poll(lambda: ContactEvent.objects.filter(contact=crm, path="/docs").exists())
    assert Notification.objects.filter(user=admin_user).count() == 1
