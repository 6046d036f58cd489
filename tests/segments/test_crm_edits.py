"""Segments follow CRM edits in realtime: a rep's change to a contact, its company, its tags or
its deals queues the contact for re-evaluation (contacts.services.changes -> CONTACT_CHANGE_HOOKS ->
identity's ProfileUpdate), as the stitching worker's changes do."""

import importlib
import time

import pytest
from django.apps import apps

from contacts import services as contact_services
from identity.models import ProfileUpdate
from pipeline import services as pipeline_services
from pipeline.models import Pipeline, Stage
from segments import services
from segments.definition import compiler
from segments.models import Segment
from tests.factories import make_admin, make_company, make_contact, make_segment
from tests.segments.helpers import members

pytestmark = pytest.mark.django_db

VIP = {"op": "and", "conditions": [{"type": "tag", "operator": "has", "value": "vip"}]}
CUSTOMERS = {
    "op": "and",
    "conditions": [{"type": "field", "field": "lifecycle_stage", "operator": "eq", "value": "customer"}],
}
FINTECH = {
    "op": "and",
    "conditions": [{"type": "field", "field": "company.industry", "operator": "eq", "value": "Fintech"}],
}
WON_A_DEAL = {
    "op": "and",
    "conditions": [{"type": "deal", "where": [{"field": "status", "operator": "eq", "value": "won"}]}],
}


def _segment(definition, name="S") -> Segment:
    return services.segment_refresh(segment=make_segment(definition, name=name))


def _queued() -> set[int]:
    return set(ProfileUpdate.objects.values_list("contact_id", flat=True))


def test_a_tag_a_rep_adds_or_removes_moves_the_contact_in_realtime(django_capture_on_commit_callbacks):
    admin = make_admin()
    contact, other = make_contact(email="vip.q10@example.org"), make_contact(email="not.q10@example.org")
    segment = _segment(VIP)
    ProfileUpdate.objects.all().delete()
    assert members(segment) == set()
    # when a rep tags the contact
    with django_capture_on_commit_callbacks(execute=True):
        contact_services.contact_update(contact=contact, actor=admin, tags=["vip"])
    # then it is queued (the other contact is not), and the realtime pass puts it in
    assert _queued() == {contact.pk}
    assert services.profile_updates_process() == 1
    assert members(segment) == {contact.pk} and other.pk not in members(segment)
    # and when the tag is removed, it leaves the same way
    with django_capture_on_commit_callbacks(execute=True):
        contact_services.contact_update(contact=contact, actor=admin, tags=[])
    services.profile_updates_process()
    assert members(segment) == set()


def test_an_edit_rolled_back_tells_nobody(django_capture_on_commit_callbacks):
    from django.db import transaction

    admin = make_admin()
    contact = make_contact(email="rolled.q10@example.org")
    ProfileUpdate.objects.all().delete()
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        contact_services.contact_update(contact=contact, actor=admin, tags=["vip"])
        raise RuntimeError("the request failed after the update")
    assert callbacks == [] and _queued() == set()


def test_bulk_lifecycle_changes_reach_a_field_segment(django_capture_on_commit_callbacks):
    admin = make_admin()
    people = [make_contact(email=f"bulk{i}.q10@example.org") for i in range(3)]
    segment = _segment(CUSTOMERS)
    ProfileUpdate.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=True):
        contact_services.contact_bulk_update(
            actor=admin, contact_ids=[p.pk for p in people[:2]], lifecycle_stage="customer"
        )
    assert _queued() == {people[0].pk, people[1].pk}
    services.profile_updates_process()
    assert members(segment) == {people[0].pk, people[1].pk}


def test_a_company_edit_moves_its_contacts(django_capture_on_commit_callbacks):
    admin = make_admin()
    acme = make_company(name="Acme", domain="acme.q10.example")
    staff = [make_contact(email=f"s{i}@acme.q10.example", company=acme) for i in range(2)]
    outsider = make_contact(email="o@elsewhere.q10.example")
    segment = _segment(FINTECH)
    ProfileUpdate.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=True):
        contact_services.company_update(company=acme, actor=admin, industry="Fintech")
    assert _queued() == {s.pk for s in staff}
    services.profile_updates_process()
    assert members(segment) == {s.pk for s in staff} and outsider.pk not in members(segment)


def test_winning_a_deal_moves_its_contact_and_moving_the_deal_to_someone_else_moves_both(
    django_capture_on_commit_callbacks,
):
    admin = make_admin()
    stage = Stage.objects.create(pipeline=Pipeline.objects.create(name="Sales"), name="Demo", probability=40)
    buyer, colleague = make_contact(email="buyer.q10@example.org"), make_contact(email="col.q10@example.org")
    with django_capture_on_commit_callbacks(execute=True):
        deal = pipeline_services.deal_create(actor=admin, title="Big one", stage=stage, contact=buyer)
    segment = _segment(WON_A_DEAL)
    ProfileUpdate.objects.all().delete()
    # when the deal is won
    with django_capture_on_commit_callbacks(execute=True):
        pipeline_services.deal_mark_won(deal=deal, actor=admin)
    services.profile_updates_process()
    assert members(segment) == {buyer.pk}
    # when the won deal is given to the colleague, both are re-evaluated
    with django_capture_on_commit_callbacks(execute=True):
        pipeline_services.deal_update(deal=deal, actor=admin, contact=colleague)
    assert _queued() == {buyer.pk, colleague.pk}
    services.profile_updates_process()
    assert members(segment) == {colleague.pk}


def test_tag_and_deal_conditions_have_realtime_triggers():
    assert compiler.analyse(compiler.parse(VIP))["triggers"] == ["profile"]
    assert compiler.analyse(compiler.parse(WON_A_DEAL))["triggers"] == ["deal"]


def test_the_migration_adds_the_triggers_to_segments_saved_before():
    vip, won = _segment(VIP, "vip"), _segment(WON_A_DEAL, "won")
    _segment(FINTECH, "fintech")
    Segment.objects.filter(pk__in=[vip.pk, won.pk]).update(triggers=[])
    migration = importlib.import_module("segments.migrations.0003_crm_edit_triggers")
    migration.add_triggers(apps, None)
    triggers = dict(Segment.objects.values_list("name", "triggers"))
    assert triggers == {"vip": ["profile"], "won": ["deal"], "fintech": ["profile"]}


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_updates_the_segment_after_a_rep_edits_a_contact_in_the_browser_form(
    client, celery_worker
):
    # given a tag segment computed before the edit
    admin = make_admin()
    contact = make_contact(email="worker.q10@example.org")
    segment = _segment(VIP)
    # when an Admin adds the tag through the contact's edit form
    client.force_login(admin)
    form = client.get(f"/contacts/{contact.pk}/edit/")
    assert form.status_code == 200
    response = client.post(
        f"/contacts/{contact.pk}/edit/",
        {
            "first_name": "",
            "last_name": "",
            "email": contact.email,
            "phone": "",
            "title": "",
            "company": "",
            "owner": "",
            "lifecycle_stage": contact.lifecycle_stage,
            "tags": "vip",
        },
    )
    assert response.status_code == 302, response.content[:500]
    # then the worker puts the contact in the segment within seconds, without a full recompute
    deadline = time.monotonic() + 30
    while contact.pk not in members(segment):
        assert time.monotonic() < deadline, celery_worker.output()[-3000:]
        time.sleep(0.1)
    segment.refresh_from_db()
    assert segment.member_count == 1


def test_deleting_contacts_recounts_the_segments_they_were_in(django_capture_on_commit_callbacks):
    admin = make_admin()
    leaving, staying = (
        make_contact(email="gone.q12@example.org", tags=["vip"]),
        make_contact(email="stay.q12@example.org", tags=["vip"]),
    )
    vip = _segment(VIP, "vip")
    static = services.segment_create(actor=admin, name="hand-picked", definition={}, kind="static")
    services.segment_members_add(actor=admin, segment=static, contact_ids=[leaving.pk, staying.pk])
    other = _segment(CUSTOMERS, "customers")  # neither is in it
    assert Segment.objects.get(pk=vip.pk).member_count == 2
    assert Segment.objects.get(pk=static.pk).member_count == 2
    # when a rep deletes one of them
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        contact_services.contact_delete(contact=leaving, actor=admin)
    # then both segments it was in count one member, and no other segment was touched
    assert len(callbacks) == 1
    counts = dict(Segment.objects.values_list("name", "member_count"))
    assert counts == {"vip": 1, "hand-picked": 1, "customers": 0}
    assert members(vip) == {staying.pk} and members(Segment.objects.get(pk=other.pk)) == set()


def test_contacts_created_by_a_csv_import_are_queued_too(
    settings, tmp_path, django_capture_on_commit_callbacks
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from contacts.models import Contact
    from contacts.services import importing

    settings.MEDIA_ROOT = tmp_path
    admin = make_admin()
    segment = _segment(VIP)
    ProfileUpdate.objects.all().delete()
    csv_text = (
        "email,first_name,tags\nnew1.q13@example.org,Ann,vip\n,Nameonly,vip\nnew2.q13@example.org,Bo,\n"
    )
    job = importing.import_upload(
        actor=admin, uploaded=SimpleUploadedFile("people.csv", csv_text.encode(), "text/csv")
    )
    importing.import_start(job=job, actor=admin, mapping=job.mapping, dedupe="update", create_companies=False)
    with django_capture_on_commit_callbacks(execute=True):
        assert importing.import_run(job_id=job.pk) is False
    created = set(
        Contact.objects.filter(first_name__in=["Ann", "Nameonly", "Bo"]).values_list("pk", flat=True)
    )
    assert len(created) == 3
    # every created contact (with an email or not) is queued, and the realtime pass sorts them
    assert _queued() == created
    services.profile_updates_process()
    tagged = set(Contact.objects.filter(first_name__in=["Ann", "Nameonly"]).values_list("pk", flat=True))
    assert members(segment) == tagged
