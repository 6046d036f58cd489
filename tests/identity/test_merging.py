import pytest

from contacts.models import Contact, ContactMerge
from contacts.services import merging as contact_merging
from core.errors import Conflict, Forbidden
from identity.models import ContactEvent, DailyActivity, Identity, IdentityWarning, WarningKind
from identity.services.merging import merge_split
from tests.factories import identify_payload, make_contact, page_payload, send
from tests.identity.helpers import drain, event_paths, identities, live

pytestmark = pytest.mark.django_db


@pytest.fixture
def merged(client, source, admin_user):
    """A visitor (with a phone from an earlier identify) merged into a CRM contact by email,
    and one event after the merge."""
    crm = make_contact(email="lin@example.com", first_name="Lin", owner=admin_user)
    send(
        client,
        source,
        page_payload("/home", anonymous_id="v1", at=0),
        page_payload("/pricing", anonymous_id="v1", at=1),
        identify_payload({"phone": "+14155552671"}, anonymous_id="v1", at=2),
    )
    drain()
    visitor = _owner("anonymous_id", "v1")
    send(
        client, source, identify_payload({"email": "lin@example.com"}, anonymous_id="v1", user_id="lin", at=3)
    )
    drain()
    send(client, source, page_payload("/after", anonymous_id="v1", user_id="lin", at=4))
    drain()
    return crm, visitor, ContactMerge.objects.get()


def _owner(kind, value):

    return Identity.objects.get(kind=kind, value=value).contact


def test_the_merge_moved_everything_and_took_the_visitors_phone(merged):
    crm, visitor, merge = merged
    crm.refresh_from_db()
    assert [c.pk for c in live()] == [crm.pk]
    assert crm.phone == "+14155552671"
    assert identities(crm) == {
        ("anonymous_id", "v1"),
        ("phone", "+14155552671"),
        ("email", "lin@example.com"),
        ("user_id", "lin"),
    }
    assert event_paths(crm) == ["/home", "/pricing", "/after"]
    assert merge.winner_id == crm.pk and merge.loser_id == visitor.pk
    assert merge.winner_snapshot["phone"] == ""


def test_split_sends_back_the_identities_and_the_events_they_resolved(merged, admin_user):
    crm, visitor, merge = merged
    # when an Admin splits the merge
    merge_split(merge=merge, actor=admin_user)
    crm.refresh_from_db()
    visitor.refresh_from_db()
    # then the visitor is live again with the identifiers it brought and the events they resolved
    assert visitor.merged_into_id is None
    assert identities(visitor) == {("anonymous_id", "v1"), ("phone", "+14155552671")}
    assert event_paths(visitor) == ["/home", "/pricing"]
    assert ContactEvent.objects.filter(contact=visitor, type="identify").count() == 1
    # the CRM contact keeps what was its own or came after the merge, and its own values
    assert identities(crm) == {("email", "lin@example.com"), ("user_id", "lin")}
    assert event_paths(crm) == ["/after"]
    assert crm.phone == "" and crm.first_name == "Lin"
    # rollups follow the events
    assert set(DailyActivity.objects.filter(contact=visitor).values_list("key", "count")) == {
        ("/home", 1),
        ("/pricing", 1),
    }
    assert set(DailyActivity.objects.filter(contact=crm).values_list("key", "count")) == {("/after", 1)}
    merge.refresh_from_db()
    assert merge.split_at is not None and merge.split_by == admin_user


def test_a_split_pair_is_not_merged_again_by_the_worker(merged, admin_user, client, source):
    crm, visitor, merge = merged
    merge_split(merge=merge, actor=admin_user)
    # when the same browser identifies as the same person again
    send(client, source, identify_payload({"email": "lin@example.com"}, anonymous_id="v1", at=10))
    drain()
    # then the split stands and a warning says why
    assert {c.pk for c in live()} == {crm.pk, visitor.pk}
    assert IdentityWarning.objects.filter(kind=WarningKind.REFUSED_MERGE, detail__contains="split").exists()


def test_split_is_admin_only_and_refused_twice_or_when_the_winner_moved_on(merged, admin_user, sales_user):
    crm, _visitor, merge = merged
    with pytest.raises(Forbidden):
        merge_split(merge=merge, actor=sales_user)
    # the winner was merged into a third contact since
    third = make_contact(email="third@example.com")
    contact_merging.contact_merge(winner=third, loser=crm, field_choices={}, actor=admin_user)
    with pytest.raises(Conflict, match="split that merge"):
        merge_split(merge=merge, actor=admin_user)
    later = ContactMerge.objects.get(loser=crm)
    merge_split(merge=later, actor=admin_user)
    merge_split(merge=merge, actor=admin_user)
    with pytest.raises(Conflict, match="already split"):
        merge_split(merge=merge, actor=admin_user)
    assert Contact.objects.filter(merged_into__isnull=True).count() == 3


def test_a_manual_merge_can_be_split_too_and_its_deal_goes_back(admin_user):
    from pipeline.models import Deal
    from tests.factories import make_pipeline

    stage = make_pipeline().stages.first()
    a, b = make_contact(email="a@example.com"), make_contact(email="b@example.com")
    deal = Deal.objects.create(pipeline=stage.pipeline, stage=stage, title="B's deal", contact=b)
    contact_merging.contact_merge(winner=a, loser=b, field_choices={}, actor=admin_user)
    assert Deal.objects.get(pk=deal.pk).contact_id == a.pk
    merge_split(merge=ContactMerge.objects.get(), actor=admin_user)
    assert Deal.objects.get(pk=deal.pk).contact_id == b.pk
    b.refresh_from_db()
    assert b.merged_into_id is None and b.email == "b@example.com"


def test_a_manual_merge_sums_daily_rollups_and_leaves_the_visitor_marker(client, source, admin_user):
    from identity.models import TrackedContact

    # given two visitors who viewed the same page on the same day
    send(
        client,
        source,
        page_payload("/p", anonymous_id="m1", at=0),
        page_payload("/p", anonymous_id="m1", at=1),
        page_payload("/p", anonymous_id="m2", at=2),
    )
    drain()
    first, second = _owner("anonymous_id", "m1"), _owner("anonymous_id", "m2")
    # when a person merges them from the duplicate finder
    contact_merging.contact_merge(winner=first, loser=second, field_choices={}, actor=admin_user)
    # then the winner's rollup counts all three views, and the "made by the worker" marker of
    # each stays with its own record
    assert list(DailyActivity.objects.values_list("contact_id", "key", "count")) == [(first.pk, "/p", 3)]
    assert set(TrackedContact.objects.values_list("contact_id", flat=True)) == {first.pk, second.pk}
    assert event_paths(first) == ["/p", "/p", "/p"]


def test_split_gives_the_email_back_to_the_loser_when_the_winner_had_taken_it(admin_user):
    # given an older record without email that took the newer record's email in a merge
    older = make_contact(first_name="Noor")
    newer = make_contact(first_name="Noor", email="noor@example.com", tags=["vip"])
    contact_merging.contact_merge(winner=older, loser=newer, field_choices={}, actor=admin_user)
    older.refresh_from_db()
    assert older.email == "noor@example.com" and older.tags == ["vip"]
    # when the merge is split
    merge_split(merge=ContactMerge.objects.get(), actor=admin_user)
    # then each has its own values again (the unique live email passes back without a clash)
    older.refresh_from_db()
    newer.refresh_from_db()
    assert older.email is None and older.tags == []
    assert newer.email == "noor@example.com" and newer.merged_into_id is None


def test_split_gives_each_person_their_own_consent_back(client, source, admin_user):
    # given a CRM person whose own browser granted marketing, and a visitor who refused it later
    crm = make_contact(email="ana.q11@example.com", owner=admin_user)
    granted = {"consent": {"categoryPreferences": {"marketing": True}}}
    refused = {"consent": {"categoryPreferences": {"marketing": False}}}
    email = {"email": "ana.q11@example.com"}
    send(client, source, identify_payload(email, anonymous_id="own", at=0, context=granted))
    drain()
    send(client, source, page_payload("/p", anonymous_id="v9", at=5, context=refused))
    drain()
    visitor = _owner("anonymous_id", "v9")
    # when the visitor identifies with the same email, the merged person keeps the newer choice
    send(client, source, identify_payload(email, anonymous_id="v9", at=6))
    drain()
    crm.refresh_from_db()
    assert crm.consent["categoryPreferences"] == {"marketing": False}
    # then, split, each has their own choice again
    merge_split(merge=ContactMerge.objects.get(winner=crm, loser=visitor), actor=admin_user)
    crm.refresh_from_db()
    visitor.refresh_from_db()
    assert crm.consent["categoryPreferences"] == {"marketing": True}
    assert visitor.consent["categoryPreferences"] == {"marketing": False}


def test_a_split_leaves_a_rule_keyed_by_identifier_digests(merged, admin_user):
    from events.services.suppression import value_hash
    from identity.models import SplitRule

    _crm, _visitor, merge = merged
    merge_split(merge=merge, actor=admin_user)
    (rule,) = SplitRule.objects.all()
    assert rule.merge_id == merge.pk
    assert {value_hash("lin@example.com"), value_hash("lin")} <= set(rule.left)
    assert {value_hash("v1"), value_hash("+14155552671")} <= set(rule.right)
    # digests only: the rule itself names nobody
    assert "lin@example.com" not in str(rule.left + rule.right)


def test_a_rebuild_keeps_an_admins_split(merged, admin_user):
    from django.core.management import call_command

    crm, _visitor, merge = merged
    merge_split(merge=merge, actor=admin_user)
    # when the identity graph is rebuilt from the event log (the visitor contact, made by the
    # worker, is recreated with a new id; the merge rows go)
    call_command("rebuild_identity", stdout=__import__("io").StringIO())
    # then the person the Admin split off is still apart from the CRM contact
    crm.refresh_from_db()
    assert crm.merged_into_id is None
    holder = _owner("anonymous_id", "v1")
    assert holder.pk != crm.pk and holder.merged_into_id is None
    assert identities(crm) >= {("email", "lin@example.com"), ("user_id", "lin")}
    assert ("anonymous_id", "v1") not in identities(crm)
    assert IdentityWarning.objects.filter(kind=WarningKind.REFUSED_MERGE, detail__contains="split").exists()


def test_erasing_the_person_deletes_their_split_rules(merged, admin_user):
    from identity.models import SplitRule
    from privacy import services as privacy_services

    crm, _visitor, merge = merged
    merge_split(merge=merge, actor=admin_user)
    assert SplitRule.objects.count() == 1
    request = privacy_services.person_erase_request(actor=admin_user, contact=crm)
    done = privacy_services.person_erase(request_id=request.pk)
    assert done.deleted.get("identity.SplitRule") == 1
    assert not SplitRule.objects.exists()


def test_the_migration_writes_rules_for_splits_made_before_rules_existed(merged, admin_user):
    import importlib

    from django.apps import apps

    from events.services.suppression import value_hash
    from identity.models import SplitRule

    _crm, _visitor, merge = merged
    merge_split(merge=merge, actor=admin_user)
    SplitRule.objects.all().delete()  # as if split before this migration
    migration = importlib.import_module("identity.migrations.0005_split_rules")
    migration.rules_for_earlier_splits(apps, None)
    (rule,) = SplitRule.objects.all()
    assert rule.merge_id == merge.pk
    assert value_hash("lin@example.com") in rule.left and value_hash("v1") in rule.right
