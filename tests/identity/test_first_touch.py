"""First touch is the person's earliest tracked touch (a visit's landing, or a campaign-tagged
event), with when it happened: for contacts the CRM knew before their first visit too, through
merges, splits and a rebuild."""

from datetime import timedelta

import pytest
from django.core.management import call_command

from contacts.models import Contact, ContactMerge
from identity.services import merging
from tests.factories import T0, identify_payload, make_admin, make_contact, page_payload, send, track_payload
from tests.identity.helpers import drain

pytestmark = pytest.mark.django_db

XSS = '<img src=x onerror="alert(1)">'
BOT_AGENT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def _campaign_page(path: str, *, source: str, **kwargs) -> dict:
    message = page_payload(path, **kwargs)
    message["context"] = {"campaign": {"source": source, "medium": "cpc", "name": "q4"}}
    return message


def _attribution(contact: Contact) -> dict:
    contact.refresh_from_db()
    return contact.attribution


def test_a_crm_contact_that_identified_before_its_first_visit_gets_the_visits_first_touch(client, source):
    # given a contact the CRM knew (signed up server-side: an identify carrying no page context)
    ada = make_contact(email="ada@example.com")
    send(
        client, source, identify_payload({"email": "ada@example.com"}, anonymous_id="a1", user_id="u1", at=0)
    )
    drain()
    # when her first tracked visit arrives, from a campaign, after a bot's crawl of the same page
    bot = _campaign_page("/landing", source="crawler", anonymous_id="a1", at=4)
    bot["context"]["userAgent"] = BOT_AGENT
    send(client, source, bot, _campaign_page("/landing", source=XSS, anonymous_id="a1", at=5))
    drain()
    # then that visit is her first touch, dated when it happened
    attribution = _attribution(ada)
    assert attribution["utm_source"] == XSS and attribution["landing_page"] == "https://example.com/landing"
    ada.refresh_from_db()
    assert ada.first_touch_at == T0 + timedelta(minutes=5)
    assert ada.first_seen == T0  # the identify is still when she was first seen
    # a server-side track call later, even one dated earlier, is not a touch
    send(client, source, track_payload("Invoice Paid", user_id="u1", at=-10))
    drain()
    ada.refresh_from_db()
    assert ada.attribution["utm_source"] == XSS and ada.first_seen == T0 - timedelta(minutes=10)


def test_a_contact_first_seen_in_the_crm_before_tracking_gets_its_first_tracked_touch(client, source):
    # given a contact whose first_seen predates any tracked session (set when the CRM made it)
    ada = make_contact(email="ada@example.com")
    Contact.objects.filter(pk=ada.pk).update(first_seen=T0 - timedelta(days=30))
    # when she visits from a campaign, then signs in
    send(
        client,
        source,
        _campaign_page("/landing", source="newsletter", anonymous_id="a1", at=0),
        identify_payload({"email": "ada@example.com"}, anonymous_id="a1", at=1),
    )
    drain()
    # then the visit is her first touch
    ada.refresh_from_db()
    assert ada.attribution["utm_source"] == "newsletter" and ada.first_touch_at == T0


def test_a_merge_keeps_the_earliest_touch_not_the_earliest_event(client, source):
    # given a CRM contact first seen through a server-side track call (no touch)...
    ada = make_contact(email="ada@example.com")
    send(client, source, identify_payload({"email": "ada@example.com"}, user_id="u1", at=0))
    send(client, source, track_payload("Trial Started", user_id="u1", at=1))
    # ...and an anonymous visitor arriving from a campaign later
    send(client, source, _campaign_page("/landing", source="ads", anonymous_id="v1", at=5))
    drain()
    # when the visitor turns out to be her
    send(client, source, identify_payload({}, anonymous_id="v1", user_id="u1", at=6))
    drain()
    # then the merge kept the visitor's touch
    assert ContactMerge.objects.filter(winner=ada).count() == 1
    ada.refresh_from_db()
    assert ada.attribution["utm_source"] == "ads" and ada.first_touch_at == T0 + timedelta(minutes=5)
    assert ada.first_seen == T0


def test_a_split_gives_each_side_its_own_first_touch(client, source):
    ada = make_contact(email="ada@example.com")
    send(client, source, identify_payload({"email": "ada@example.com"}, user_id="u1", at=0))
    send(client, source, _campaign_page("/account", source="email", user_id="u1", at=8))
    send(client, source, _campaign_page("/landing", source="ads", anonymous_id="v1", at=5))
    drain()
    send(client, source, identify_payload({}, anonymous_id="v1", user_id="u1", at=6))
    drain()
    assert _attribution(ada)["utm_source"] == "ads"  # merged: the visitor's touch came first
    merge = ContactMerge.objects.get(winner=ada)
    merging.merge_split(merge=merge, actor=make_admin())
    ada.refresh_from_db()
    visitor = Contact.objects.get(pk=merge.loser_id)
    # her own first event is no touch (an identify without page context): her visit is; the
    # visitor keeps its own
    assert ada.attribution["utm_source"] == "email" and ada.first_touch_at == T0 + timedelta(minutes=8)
    assert visitor.attribution["utm_source"] == "ads" and visitor.first_touch_at == T0 + timedelta(minutes=5)


def test_a_rebuild_reproduces_the_first_touch(client, source):
    ada = make_contact(email="ada@example.com")
    send(
        client, source, identify_payload({"email": "ada@example.com"}, anonymous_id="a1", user_id="u1", at=0)
    )
    send(client, source, _campaign_page("/landing", source="newsletter", anonymous_id="a1", at=5))
    send(client, source, _campaign_page("/pricing", source="retarget", anonymous_id="a1", at=9))
    drain()
    incremental = _attribution(ada)
    assert incremental["utm_source"] == "newsletter"
    call_command("rebuild_identity", stdout=None)
    assert _attribution(ada) == incremental


def test_the_backfill_dates_old_attribution_and_finds_the_first_tracked_touch(client, source):
    from io import StringIO

    # given contacts stitched under the old rule (simulated: attribution without its time)
    ada = make_contact(email="ada@example.com")
    send(
        client, source, identify_payload({"email": "ada@example.com"}, anonymous_id="a1", user_id="u1", at=0)
    )
    send(client, source, _campaign_page("/landing", source="newsletter", anonymous_id="a1", at=5))
    tagged = track_payload("Ad Clicked", anonymous_id="b1", at=1)
    tagged["context"] = {"campaign": {"source": "  "}}  # a blank tag is no touch
    send(client, source, tagged, _campaign_page("/", source="ads", anonymous_id="b1", at=2))
    drain()
    Contact.objects.update(attribution={})
    Contact.objects.filter(pk=ada.pk).update(attribution={"landing_page": "from the identify"})
    untracked = make_contact(email="cy@example.com")
    Contact.objects.filter(pk=untracked.pk).update(attribution={"utm_source": "typed in"})
    # when the backfill runs (twice: it is safe to repeat)
    out = StringIO()
    call_command("backfill_first_touch", "--batch-size", "1", stdout=out)
    again = StringIO()
    call_command("backfill_first_touch", stdout=again)
    # then each tracked person has their first tracked touch, dated; others keep theirs
    ada.refresh_from_db()
    assert ada.attribution["utm_source"] == "newsletter" and ada.first_touch_at == T0 + timedelta(minutes=5)
    visitor = Contact.objects.exclude(pk__in=[ada.pk, untracked.pk]).get(merged_into__isnull=True)
    assert visitor.attribution["utm_source"] == "ads" and visitor.first_touch_at == T0 + timedelta(minutes=2)
    assert _attribution(untracked) == {"utm_source": "typed in"}
    assert "for 2 contacts" in out.getvalue() and "for 0 contacts" in again.getvalue()
