import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from contacts.models import Contact, ContactMerge, CustomField, FieldChange
from contacts.services import merging
from core.errors import Conflict, Forbidden
from pipeline.models import Deal, Pipeline, Stage
from tests.factories import make_company, make_contact, make_deal, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def pair(db):
    CustomField.objects.create(entity="contact", key="plan", label="Plan", field_type="text")
    CustomField.objects.create(entity="contact", key="score", label="Score", field_type="number")
    acme = make_company(name="Acme", domain="acme.com")
    winner = make_contact(
        first_name="Ada",
        last_name="Lovelace",
        email="ada@acme.com",
        phone="",
        tags=["vip"],
        custom_fields={"plan": "Free"},
        title="CTO",
    )
    loser = make_contact(
        first_name="Augusta",
        last_name="Lovelace",
        email="ada.l@gmail.com",
        phone="+44 20 7946 0958",
        tags=["newsletter"],
        custom_fields={"plan": "Pro", "score": 9},
        company=acme,
        title="Countess",
    )
    Contact.objects.filter(pk=winner.pk).update(
        first_seen=dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
        traits={"plan": "free"},
        attribution={"utm_source": "x"},
    )
    Contact.objects.filter(pk=loser.pk).update(
        first_seen=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        traits={"plan": "pro", "age": 36},
        attribution={"utm_source": "google"},
    )
    winner.refresh_from_db()
    loser.refresh_from_db()
    return winner, loser


def test_merge_applies_choices_moves_deals_and_leaves_a_tombstone(pair, admin_user):
    winner, loser = pair
    deal = make_deal(contact=loser, title="Loser's deal")
    kept = make_deal(contact=winner, title="Winner's deal")
    earlier_tombstone = make_contact(email="old@acme.com", merged_into=loser)
    # when an Admin merges, keeping the loser's email and plan
    result = merging.contact_merge(
        winner=winner,
        loser=loser,
        actor=admin_user,
        field_choices={"email": "loser", "custom_fields.plan": "loser"},
    )
    # then the winner has the chosen values, blanks filled from the loser, tags unioned
    result.refresh_from_db()
    assert (result.email, result.first_name, result.title, result.phone, result.company.name) == (
        "ada.l@gmail.com",
        "Ada",
        "CTO",
        "+44 20 7946 0958",
        "Acme",
    )
    assert result.tags == ["newsletter", "vip"]
    assert result.custom_fields == {"plan": "Pro", "score": 9}
    # CDP data combined by rule: winner's traits win, earliest first touch keeps its attribution
    assert result.traits == {"plan": "free", "age": 36}
    assert (result.first_seen.month, result.attribution) == (1, {"utm_source": "google"})
    # every related record now points at the winner, including a deal and an older tombstone
    assert set(Deal.objects.filter(contact=winner).values_list("pk", flat=True)) == {deal.pk, kept.pk}
    assert Contact.objects.get(pk=earlier_tombstone.pk).merged_into_id == winner.pk
    loser.refresh_from_db()
    assert loser.merged_into_id == winner.pk and loser.email == "ada.l@gmail.com"
    # and the merge is audited with the loser's values, plus field history on the winner
    audit = ContactMerge.objects.get()
    assert (audit.winner_id, audit.loser_id, audit.actor_id) == (winner.pk, loser.pk, admin_user.pk)
    assert (
        audit.loser_snapshot["email"] == "ada.l@gmail.com"
        and audit.loser_snapshot["company"] == loser.company_id
    )
    assert audit.field_choices["email"] == "loser" and audit.field_choices["first_name"] == "winner"
    assert audit.moved == {"pipeline.Deal.contact": 1, "contacts.Contact.merged_into": 1}
    history = list(FieldChange.objects.filter(object_id=winner.pk).values_list("field", "new_value"))
    assert ("email", "ada.l@gmail.com") in history and ("custom_fields.plan", "Pro") in history
    assert ("tags", ["newsletter", "vip"]) in history and ("first_name", "Augusta") not in history


def test_merging_again_is_a_no_op(pair, admin_user):
    winner, loser = pair
    merging.contact_merge(winner=winner, loser=loser, actor=admin_user, field_choices={})
    merging.contact_merge(winner=winner, loser=loser, actor=admin_user, field_choices={"email": "loser"})
    assert ContactMerge.objects.count() == 1
    assert Contact.objects.get(pk=winner.pk).email == "ada@acme.com"


def test_a_tombstone_cannot_be_merged_elsewhere_or_win(pair, admin_user):
    winner, loser = pair
    third = make_contact(email="third@x.com")
    merging.contact_merge(winner=winner, loser=loser, actor=admin_user, field_choices={})
    with pytest.raises(Conflict, match="already merged"):
        merging.contact_merge(winner=third, loser=loser, actor=admin_user, field_choices={})
    with pytest.raises(Conflict, match="was merged into"):
        merging.contact_merge(winner=loser, loser=third, actor=admin_user, field_choices={})
    with pytest.raises(ValidationError):
        merging.contact_merge(winner=third, loser=third, actor=admin_user, field_choices={})


def test_bad_choices_are_refused_before_anything_changes(pair, admin_user):
    winner, loser = pair
    with pytest.raises(ValidationError):
        merging.contact_merge(winner=winner, loser=loser, actor=admin_user, field_choices={"email": "both"})
    with pytest.raises(ValidationError):
        merging.contact_merge(winner=winner, loser=loser, actor=admin_user, field_choices={"traits": "loser"})
    assert Contact.objects.get(pk=loser.pk).merged_into_id is None


def test_sales_merges_only_records_it_may_change_and_marketing_never(pair, sales_user, marketing_user):
    winner, loser = pair
    other = make_user(role="Sales")
    Contact.objects.filter(pk=loser.pk).update(owner=other)
    loser.refresh_from_db()
    with pytest.raises(Forbidden):
        merging.contact_merge(winner=winner, loser=loser, actor=sales_user, field_choices={})
    with pytest.raises(Forbidden):
        merging.contact_merge(winner=winner, loser=loser, actor=marketing_user, field_choices={})
    assert not ContactMerge.objects.exists()
    Contact.objects.filter(pk=loser.pk).update(owner=sales_user)
    merging.contact_merge(winner=winner, loser=loser, actor=sales_user, field_choices={})
    assert Contact.objects.get(pk=loser.pk).merged_into_id == winner.pk


def test_duplicate_finder_groups_and_ranks_by_evidence(admin_user):
    acme = make_company(name="Acme")
    # same name at the same company AND same phone: strongest
    a1 = make_contact(first_name="Ada", last_name="Lovelace", company=acme, phone="+44 20 7946 0958")
    a2 = make_contact(first_name=" ada", last_name="LOVELACE", company=acme, phone="020 7946 0958")
    # same name and email local part, different domains
    b1 = make_contact(first_name="Bob", last_name="Stone", email="bob.stone@a.com")
    b2 = make_contact(first_name="Bob", last_name="Stone", email="Bob.Stone@b.com")
    # same phone only, three of them
    c = [make_contact(first_name=f"C{i}", phone="555-123-4567") for i in range(3)]
    # not duplicates: a tombstone, an anonymous visitor, a different person with a short number
    make_contact(first_name="Bob", last_name="Stone", email="bob.stone@c.com", merged_into=b1)
    make_contact(phone="5551234567", is_identified=False)
    make_contact(first_name="Dan", phone="123")
    make_contact(first_name="Dan", phone="123")
    groups = merging.contact_duplicate_groups(user=admin_user)
    assert [(g.ids, sorted(g.reasons), g.score) for g in groups] == [
        ((a1.pk, a2.pk), ["name_company", "phone"], 6),
        (tuple(x.pk for x in c), ["phone"], 3),
        ((b1.pk, b2.pk), ["name_email_local"], 2),
    ]
    assert [x.pk for x in groups[0].contacts] == [a1.pk, a2.pk]


def test_rows_a_unique_constraint_refuses_to_move_stay_on_the_tombstone(db):
    # given two rows of a table with a unique foreign key to contacts, one on each contact
    a, b, c = make_contact(email="a@x.com"), make_contact(email="b@x.com"), make_contact(email="c@x.com")
    ContactMerge.objects.create(winner=c, loser=a)
    ContactMerge.objects.create(winner=c, loser=b)
    # when the rows of a are repointed at b
    moved, left = merging._repoint(ContactMerge, "loser", loser=a, winner=b)
    # then the colliding row stays where it was and nothing else broke
    assert (moved, left) == (0, 1)
    assert sorted(ContactMerge.objects.values_list("loser_id", flat=True)) == sorted([a.pk, b.pk])


def test_activities_tasks_and_deal_participation_follow_the_winner(pair, admin_user):
    # given the loser has a logged call, an open task and takes part in a deal as a participant
    from django.utils import timezone

    from pipeline.models import Activity, Task

    winner, loser = pair
    pipeline = Pipeline.objects.create(name="Merge test")
    stage = Stage.objects.create(pipeline=pipeline, name="Open")
    deal = Deal.objects.create(title="Shared", pipeline=pipeline, stage=stage)
    deal.participants.add(loser)
    call = Activity.objects.create(kind="call", subject="Intro", contact=loser, occurred_at=timezone.now())
    task = Task.objects.create(title="Send deck", assignee=admin_user, contact=loser)
    # when the two are merged
    merging.contact_merge(winner=winner, loser=loser, field_choices={}, actor=admin_user)
    # then everything that was on the loser is on the winner (contacts imports no pipeline code)
    call.refresh_from_db()
    task.refresh_from_db()
    assert call.contact_id == winner.pk and task.contact_id == winner.pk
    assert list(deal.participants.values_list("pk", flat=True)) == [winner.pk]
