"""Losing a deal out of the box: the shipped reasons, and "Other" with a note."""

import pytest
from django.core.exceptions import ValidationError

from pipeline import services
from pipeline.models import Deal, DealStatus, Pipeline, StageChange
from tests.contacts.test_api import as_json

pytestmark = pytest.mark.django_db


@pytest.fixture
def deal(fresh_install, sales_user):
    stage = Pipeline.objects.get(name="Sales pipeline").stages.first()
    return services.deal_create(actor=sales_user, title="Acme pilot", stage=stage)


def test_other_needs_a_note_and_the_note_goes_with_the_loss(deal, sales_user):
    for note in ("", "   "):
        with pytest.raises(ValidationError) as refused:
            services.deal_mark_lost(deal=deal, actor=sales_user, reason="Other", note=note)
        assert list(refused.value.message_dict) == ["lost_note"]
    with pytest.raises(ValidationError, match="At most 2000"):
        services.deal_mark_lost(deal=deal, actor=sales_user, reason="Other", note="x" * 2001)
    assert Deal.objects.get(pk=deal.pk).status == DealStatus.OPEN
    # a note is optional with the other reasons, and kept
    services.deal_mark_lost(deal=deal, actor=sales_user, reason="Timing", note="")
    services.deal_mark_lost(deal=deal, actor=sales_user, reason="Other", note="  Went with a spreadsheet  ")
    lost = Deal.objects.get(pk=deal.pk)
    assert (lost.status, lost.lost_reason, lost.lost_note) == ("lost", "Other", "Went with a spreadsheet")
    # explaining the same loss better changes the note, not the history
    changes = StageChange.objects.filter(deal=deal).count()
    services.deal_mark_lost(deal=deal, actor=sales_user, reason="Other", note="Built it in-house")
    assert Deal.objects.get(pk=deal.pk).lost_note == "Built it in-house"
    assert StageChange.objects.filter(deal=deal).count() == changes
    # reopening forgets why it was lost
    services.deal_reopen(deal=deal, actor=sales_user)
    assert (Deal.objects.get(pk=deal.pk).lost_reason, Deal.objects.get(pk=deal.pk).lost_note) == ("", "")


def test_the_api_answers_400_for_other_without_a_note(client, sales_user, deal):
    client.force_login(sales_user)
    api = as_json(client)
    url = f"/api/v1/deals/{deal.pk}/"
    refused = api.patch_json(url, {"status": "lost", "lost_reason": "Other"})
    assert refused.status_code == 400
    assert list(refused.json()["fields"]) == ["lost_note"]
    assert api.get(url).json()["status"] == "open"
    lost = api.patch_json(url, {"status": "lost", "lost_reason": "Other", "lost_note": "Project cancelled"})
    assert lost.status_code == 200
    assert (lost.json()["lost_reason"], lost.json()["lost_note"]) == ("Other", "Project cancelled")
    # a new deal is open: no note on creation
    stage = deal.stage_id
    created = api.post_json("/api/v1/deals/", {"title": "New", "stage": stage, "lost_note": "x"})
    assert created.status_code == 400 and "status" in created.json()["fields"]


def test_the_lost_form_asks_for_the_note_and_the_deal_page_shows_it(client, sales_user, deal):
    client.force_login(sales_user)
    form = client.get(f"/deals/{deal.pk}/lost/").content.decode()
    # the shipped reasons are there to pick, and a note field
    for reason in ("Price", "Competitor", "No budget", "No decision", "Timing", "Other"):
        assert f'<option value="{reason}"' in form
    assert 'name="lost_note"' in form
    refused = client.post(f"/deals/{deal.pk}/lost/", {"lost_reason": "Other", "lost_note": ""})
    assert refused.status_code == 422
    body = refused.content.decode()
    assert 'data-testid="lost-note-error"' in body and "needs a note" in body
    assert '<option value="Other" selected>' in body  # the choice survives the error
    response = client.post(
        f"/deals/{deal.pk}/lost/", {"lost_reason": "Other", "lost_note": "Chose <b>Acme</b>\nagain"}
    )
    assert response.status_code == 302
    page = client.get(f"/deals/{deal.pk}/").content.decode()
    assert 'data-testid="lost-note">Chose &lt;b&gt;Acme&lt;/b&gt;<br>again</div>' in page


def test_the_note_rule_is_the_reasons_flag_so_it_survives_a_rename_and_any_reason_may_ask(
    admin_client, admin_user, sales_user, deal
):
    from pipeline.models import LostReason

    other = LostReason.objects.get(name="Other")
    assert other.note_required and not LostReason.objects.get(name="Price").note_required
    # the Admin renames "Other" and makes "Competitor" ask for a note too, in Settings
    admin_client.post(
        "/settings/pipelines/reason-update/",
        {"id": other.pk, "name": "Something else", "active": "on", "note_required": "on"},
    )
    competitor = LostReason.objects.get(name="Competitor")
    admin_client.post(
        "/settings/pipelines/reason-update/",
        {"id": competitor.pk, "name": "Competitor", "active": "on", "note_required": "on"},
    )
    admin_client.post("/settings/pipelines/reason-create/", {"name": "Went dark"})
    assert not LostReason.objects.get(name="Went dark").note_required
    settings_page = admin_client.get("/settings/pipelines/").content.decode()
    assert settings_page.count('name="note_required" checked') == 2
    for reason in ("Something else", "Competitor"):
        with pytest.raises(ValidationError) as refused:
            services.deal_mark_lost(deal=deal, actor=sales_user, reason=reason, note="")
        assert list(refused.value.message_dict) == ["lost_note"]
    # the lost form names the reasons that need one
    form = admin_client.get(f"/deals/{deal.pk}/lost/").content.decode()
    assert "(required for “Competitor”, “Something else”)" in form
    # a reason that does not ask takes no note; unticking the box lifts the rule
    services.deal_mark_lost(deal=deal, actor=sales_user, reason="Went dark", note="")
    admin_client.post(
        "/settings/pipelines/reason-update/", {"id": competitor.pk, "name": "Competitor", "active": "on"}
    )
    services.deal_reopen(deal=deal, actor=sales_user)
    services.deal_mark_lost(deal=deal, actor=sales_user, reason="Competitor", note="")
    assert Deal.objects.get(pk=deal.pk).lost_reason == "Competitor"


def test_the_migration_flags_every_reason_named_other_in_any_case():
    import importlib

    from django.apps import apps

    from pipeline.models import LostReason

    flag_other = importlib.import_module("pipeline.migrations.0006_lostreason_note_required").flag_other
    LostReason.objects.create(name="OTHER")
    LostReason.objects.create(name="Others")
    flag_other(apps, None)
    assert set(LostReason.objects.filter(note_required=True).values_list("name", flat=True)) == {"OTHER"}
