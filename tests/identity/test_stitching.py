from datetime import date

import pytest

from contacts.models import Contact, ContactMerge, LifecycleStage, MergeReason
from identity.models import (
    BlockedValue,
    ContactEvent,
    DailyActivity,
    Identity,
    IdentityWarning,
    ProfileUpdate,
    WarningKind,
)
from identity.services.stitching import normalise
from pipeline.models import Deal
from tests.factories import (
    alias_payload,
    group_payload,
    identify_payload,
    make_contact,
    make_pipeline,
    page_payload,
    send,
    track_payload,
)
from tests.identity.helpers import drain, event_paths, identities, live

pytestmark = pytest.mark.django_db


def test_a_new_visitor_becomes_an_anonymous_contact_with_rollups(client, source):
    # given a visitor nobody has seen, viewing pricing twice and signing up
    send(
        client,
        source,
        page_payload("/pricing", anonymous_id="a1", at=0),
        page_payload("/pricing", anonymous_id="a1", at=5),
        track_payload("Signed Up", anonymous_id="a1", at=6),
    )
    # when the worker runs
    assert drain() == 3
    # then one anonymous visitor holds the three events and the daily counts
    (contact,) = live()
    assert not contact.is_identified and contact.lifecycle_stage == LifecycleStage.VISITOR
    assert identities(contact) == {("anonymous_id", "a1")}
    assert ContactEvent.objects.filter(contact=contact).count() == 3
    rollups = set(DailyActivity.objects.filter(contact=contact).values_list("day", "kind", "key", "count"))
    assert rollups == {
        (date(2026, 11, 2), "page", "/pricing", 2),
        (date(2026, 11, 2), "event", "Signed Up", 1),
    }
    assert contact.first_seen.minute == 0 and contact.last_seen.minute == 6
    assert ProfileUpdate.objects.filter(contact=contact).exists()


def test_bot_events_stay_on_the_timeline_but_out_of_the_rollups(client, source):
    bot = page_payload("/pricing", anonymous_id="crawler", at=0)
    bot["context"] = {"userAgent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"}
    human = page_payload("/pricing", anonymous_id="crawler", at=1)
    send(client, source, bot, human)
    assert drain() == 2
    (contact,) = live()
    assert sorted(ContactEvent.objects.filter(contact=contact).values_list("is_bot", flat=True)) == [
        False,
        True,
    ]
    # segments and badges count people, not crawlers: only the human view is in the rollup
    assert list(DailyActivity.objects.filter(contact=contact).values_list("key", "count")) == [
        ("/pricing", 1)
    ]
    # and a recompute from the projection agrees with the worker
    from identity.services.projection import daily_activity_recompute

    daily_activity_recompute(contact_ids=[contact.pk])
    assert list(DailyActivity.objects.filter(contact=contact).values_list("key", "count")) == [
        ("/pricing", 1)
    ]


def test_anonymous_pages_then_identify_make_one_person_with_first_touch(client, source):
    # given anonymous page views, the first from a campaign
    campaign = {"source": "newsletter", "medium": "email", "name": "launch"}
    first = page_payload("/blog", anonymous_id="a1", at=0)
    first["context"] = {"campaign": campaign, "page": {"referrer": "https://news.example.org/"}}
    send(client, source, first, page_payload("/pricing", anonymous_id="a1", at=3))
    drain()
    # when the visitor identifies
    send(
        client,
        source,
        identify_payload(
            {"email": " Ada@Example.com ", "first_name": "Ada", "plan": "pro"},
            anonymous_id="a1",
            user_id="u1",
            at=9,
        ),
    )
    drain()
    # then one identified lead holds the earlier pages, with the first page's attribution
    (contact,) = live()
    assert contact.is_identified and contact.lifecycle_stage == LifecycleStage.LEAD
    assert contact.email == "ada@example.com" and contact.first_name == "Ada"
    assert contact.traits["plan"] == "pro"
    assert identities(contact) == {("anonymous_id", "a1"), ("user_id", "u1"), ("email", "ada@example.com")}
    assert event_paths(contact) == ["/blog", "/pricing"]
    assert contact.attribution["utm_source"] == "newsletter"
    assert contact.attribution["utm_campaign"] == "launch"
    assert contact.attribution["referrer"] == "https://news.example.org/"
    assert contact.attribution["landing_page"] == "https://example.com/blog"


def test_identify_with_a_crm_contacts_email_joins_it_and_its_deal_survives(client, source, admin_user):
    # given a contact a rep typed in, with a deal, and an anonymous visitor
    crm = make_contact(email="grace@example.com", first_name="Grace", owner=admin_user)
    stage = make_pipeline().stages.first()
    deal = Deal.objects.create(pipeline=stage.pipeline, stage=stage, title="Big one", contact=crm)
    send(client, source, page_payload("/docs", anonymous_id="a9", at=0))
    drain()
    # when the visitor identifies with the same email in another case
    send(
        client,
        source,
        identify_payload(
            {"email": "GRACE@example.COM", "first_name": "G."}, anonymous_id="a9", user_id="g1", at=2
        ),
    )
    drain()
    # then there is one person: the CRM record, with the visitor's history and its deal intact
    (person,) = live()
    assert person.pk == crm.pk
    assert person.first_name == "Grace"  # CRM value wins over the trait
    assert event_paths(person) == ["/docs"]
    assert identities(person) == {("anonymous_id", "a9"), ("user_id", "g1"), ("email", "grace@example.com")}
    assert Deal.objects.get(pk=deal.pk).contact_id == crm.pk
    merge = ContactMerge.objects.get()
    assert merge.winner_id == crm.pk and merge.reason == MergeReason.EMAIL
    assert merge.event_id is not None and merge.actor is None
    assert merge.moved_ids["identity.Identity.contact"]


def test_two_users_on_one_device_stay_two_people_with_a_warning(client, source):
    # given a device where u1 logged in
    send(
        client,
        source,
        page_payload("/", anonymous_id="shared", at=0),
        identify_payload({}, anonymous_id="shared", user_id="u1", at=1),
    )
    drain()
    # when u2 logs in on the same device and browses
    send(
        client,
        source,
        identify_payload({"email": "two@example.com"}, anonymous_id="shared", user_id="u2", at=5),
        page_payload("/settings", anonymous_id="shared", user_id="u2", at=6),
    )
    drain()
    # then two people, u2's events on u2, and a refused-merge warning
    people = live()
    assert len(people) == 2
    (u1,) = [c for c in people if ("user_id", "u1") in identities(c)]
    (u2,) = [c for c in people if ("user_id", "u2") in identities(c)]
    assert ("anonymous_id", "shared") in identities(u1)
    assert identities(u2) == {("user_id", "u2"), ("email", "two@example.com")}
    assert event_paths(u2) == ["/settings"]
    warning = IdentityWarning.objects.get(kind=WarningKind.REFUSED_MERGE)
    assert {warning.contact_id, warning.other_contact_id} == {u1.pk, u2.pk}
    assert not ContactMerge.objects.exists()


def test_junk_identifiers_are_ignored_with_one_warning_per_value(client, source):
    # given an Admin's own placeholder on the blocked list, and events carrying blocked values
    BlockedValue.objects.create(kind="", value="VOID")
    send(
        client,
        source,
        page_payload("/a", anonymous_id="a1", user_id="void", at=0),
        page_payload("/b", anonymous_id="a2", user_id="Void", at=1),
        identify_payload({"email": "test@test.com"}, anonymous_id="a1", at=3),
        identify_payload({"email": "TEST@test.com"}, anonymous_id="a2", at=4),
    )
    drain()
    # then nobody is merged through them and they are no identity
    assert len(live()) == 2
    assert not Identity.objects.filter(value__in=["void", "Void", "test@test.com"]).exists()
    # and the warnings are rate-limited: one per identifier per day, however often it comes
    warnings = IdentityWarning.objects.filter(kind=WarningKind.BLOCKED_VALUE)
    assert sorted(warnings.values_list("identity_value", flat=True)) == ["Void", "test@test.com", "void"]
    send(client, source, page_payload("/d", anonymous_id="a4", user_id="void", at=5))
    drain()
    assert warnings.filter(identity_value="void").count() == 1


def test_alias_links_the_previous_id_to_the_user_and_merges_what_it_joins(client, source):
    # given a server-side user and an anonymous browser session
    send(
        client,
        source,
        track_payload("Order Completed", user_id="u7", at=0),
        page_payload("/", anonymous_id="anon-7", at=1),
    )
    drain()
    assert len(live()) == 2
    # when the app aliases the browser's id to the user
    send(client, source, alias_payload("anon-7", "u7", at=2))
    drain()
    # then they are one person, merged for the alias
    (person,) = live()
    assert identities(person) == {("user_id", "u7"), ("anonymous_id", "anon-7")}
    assert ContactEvent.objects.filter(contact=person).count() == 3
    assert ContactMerge.objects.get().reason == MergeReason.ALIAS


def test_alias_of_an_unknown_previous_id_links_it(client, source):
    send(client, source, alias_payload("old-anon", "u8", at=0))
    drain()
    (person,) = live()
    assert identities(person) == {("user_id", "u8"), ("anonymous_id", "old-anon")}


def test_group_links_the_person_to_a_company_by_domain(client, source):
    from tests.factories import make_company

    acme = make_company(name="Acme", domain="acme.com")
    send(
        client,
        source,
        group_payload("grp-1", {"name": "ACME Inc", "domain": "https://www.acme.com"}, user_id="u1", at=0),
        group_payload("grp-2", {"name": "Globex"}, user_id="u2", at=1),
    )
    drain()
    by_user = {c.pk: c for c in live()}
    companies = {Identity.objects.get(contact_id=pk).value: c.company for pk, c in by_user.items()}
    assert companies["u1"] == acme
    assert companies["u2"].name == "Globex"
    # the same groupId later finds the same company
    send(client, source, group_payload("grp-2", {}, user_id="u3", at=2))
    drain()
    u3 = Identity.objects.get(value="u3").contact
    assert u3.company == companies["u2"]


def test_processing_the_same_events_twice_changes_nothing(client, source):
    from events.models import Event, IngestBatch

    send(
        client,
        source,
        page_payload("/", anonymous_id="a1", at=0),
        identify_payload({"email": "x@example.com"}, anonymous_id="a1", user_id="u1", at=1),
        page_payload("/pricing", user_id="u1", at=2),
    )
    drain()
    before = (
        set(Identity.objects.values_list("kind", "value", "contact_id")),
        set(ContactEvent.objects.values_list("event_id", "contact_id")),
        set(DailyActivity.objects.values_list("contact_id", "day", "kind", "key", "count")),
        Contact.objects.count(),
    )
    # when every event is queued again (a redelivered batch)
    from django.utils import timezone

    ids = list(Event.objects.order_by("pk").values_list("pk", flat=True))
    IngestBatch.objects.create(event_ids=ids, size=len(ids), enqueued_at=timezone.now())
    assert drain() == 3
    after = (
        set(Identity.objects.values_list("kind", "value", "contact_id")),
        set(ContactEvent.objects.values_list("event_id", "contact_id")),
        set(DailyActivity.objects.values_list("contact_id", "day", "kind", "key", "count")),
        Contact.objects.count(),
    )
    assert after == before


def test_caps_stop_a_contact_collecting_too_many_identifiers(client, source, settings):
    settings.IDENTITY_CAPS = {"email": 2}
    send(
        client,
        source,
        *[identify_payload({"email": f"e{i}@example.com"}, user_id="u1", at=i) for i in range(4)],
    )
    drain()
    (person,) = live()
    assert {v for k, v in identities(person) if k == "email"} == {"e0@example.com", "e1@example.com"}
    assert IdentityWarning.objects.filter(kind=WarningKind.CAP_HIT).count() == 2


def test_phone_numbers_are_stored_in_e164(settings):
    settings.IDENTITY_PHONE_REGION = "GB"
    assert normalise("phone", "020 7946 0958") == "+442079460958"
    assert normalise("phone", "+1 (415) 555-2671") == "+14155552671"
    assert normalise("phone", "not a phone") is None
    assert normalise("email", " Ada@Example.COM ") == "ada@example.com"
    assert normalise("email", "nope") is None


HOOK_CALLS: list[int] = []


def record_hook() -> None:
    HOOK_CALLS.append(ProfileUpdate.objects.count())


def test_the_profile_update_hook_runs_after_commit(
    client, source, settings, django_capture_on_commit_callbacks
):
    settings.PROFILE_UPDATE_HOOK = "tests.identity.test_stitching.record_hook"
    HOOK_CALLS.clear()
    send(
        client, source, page_payload("/", anonymous_id="h1", at=0), page_payload("/", anonymous_id="h2", at=1)
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        drain()
    # nothing ran inside the transaction; on commit the hook sees both contacts' update rows
    assert HOOK_CALLS == []
    for callback in callbacks:
        callback()
    assert HOOK_CALLS and HOOK_CALLS[-1] == 2


def test_external_ids_and_phones_join_people_with_their_reason(client, source):
    send(
        client,
        source,
        page_payload(
            "/", anonymous_id="d1", at=0, context={"externalIds": [{"id": "42", "type": "hubspot_id"}]}
        ),
        page_payload("/", anonymous_id="d2", at=1),
    )
    drain()
    send(
        client,
        source,
        identify_payload(
            {}, anonymous_id="d2", at=2, context={"externalIds": [{"id": "42", "type": "HubSpot_ID"}]}
        ),
    )
    drain()
    (person,) = live()
    assert ("external", "hubspot_id:42") in identities(person)
    assert ContactMerge.objects.get().reason == MergeReason.EXTERNAL_ID


def test_the_drain_runs_on_the_identity_queue_and_dedup_expiry_stays_on_ingest():
    from cdp_crm.celery import app

    def queue(name: str) -> str:
        return app.amqp.router.route({}, name, (), {})["queue"].name

    assert queue("events.tasks.ingest_drain") == "identity"
    assert queue("events.tasks.event_dedup_expire") == "ingest"
