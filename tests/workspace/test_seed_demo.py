import io
import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db.models import F, Max, Min
from django.utils import timezone

from accounts.models import Notification
from contacts.models import Company, Contact, ContactMerge
from events.models import Event, Source
from events.selectors import queued_event_count
from identity.models import ContactEvent, DailyActivity, HotDealAlert, HotRule
from pipeline.models import Activity, Deal, DealStatus, LostReason, Pipeline, Stage, Task
from segments.models import Membership, Segment
from tests.factories import logs_in, make_admin, make_contact


def _snapshot():
    return {
        # the CRM's own people (the site's visitors and sign-ups have no company)
        "contacts": sorted(
            Contact.objects.filter(company__isnull=False).values_list(
                "email", "lifecycle_stage", "company__domain", "owner__username"
            )
        ),
        "deals": sorted(
            Deal.objects.values_list("title", "amount", "status", "stage__name", "owner__username")
        ),
        "companies": Company.objects.count(),
        "stages": Stage.objects.count(),
        "tasks": sorted(Task.objects.values_list("deal__title", "title")),
    }


@pytest.mark.django_db
def test_seed_demo_is_realistic_deterministic_and_idempotent():
    call_command("seed_demo", "--contacts", "60", stdout=io.StringIO())
    first = _snapshot()
    assert len(first["contacts"]) == 60 and first["companies"] == 25
    assert Pipeline.objects.count() == 2 and first["stages"] == 8
    assert len(first["deals"]) == 75
    assert Source.objects.filter(name="Website").count() == 1
    # most open deals have a next step, so the board's badges are not all "none scheduled"
    open_deals = Deal.objects.filter(status=DealStatus.OPEN)
    assert open_deals.filter(next_activity_at__isnull=False).count() > open_deals.count() // 2
    assert not open_deals.filter(stage_entered_at__isnull=True).exists()
    # every contact's email domain is its company's
    assert all(email.endswith("@" + domain) for email, _, domain, _ in first["contacts"])

    out = io.StringIO()
    call_command("seed_demo", "--contacts", "60", stdout=out)
    assert "0 new contacts, 0 new deals" in out.getvalue()
    assert _snapshot() == first

    # the same seed on an empty database gives the same data
    Deal.objects.all().delete()
    Contact.objects.all().delete()
    call_command("seed_demo", "--contacts", "60", stdout=io.StringIO())
    assert _snapshot() == first


def _crm_contacts() -> int:
    return Contact.objects.filter(company__isnull=False).count()


@pytest.mark.django_db
def test_demo_setup_follows_the_database_not_a_marker_file(tmp_path, client):
    from django.contrib.auth import get_user_model

    password_file = tmp_path / "demo-password"
    # an empty database: demo data and a working admin login
    call_command("demo_setup", "--password-file", str(password_file), stdout=io.StringIO())
    password = password_file.read_text().strip()
    assert _crm_contacts() == 200
    assert logs_in(client, "admin", password)
    # running again changes nothing
    contacts = Contact.objects.count()
    call_command("demo_setup", "--password-file", str(password_file), stdout=io.StringIO())
    assert (
        Contact.objects.count() == contacts and get_user_model().objects.filter(username="admin").count() == 1
    )
    # a database with data but no admin (another DATABASE_URL) gets the admin, not more data
    get_user_model().objects.filter(username="admin").delete()
    call_command("demo_setup", "--password-file", str(password_file), stdout=io.StringIO())
    assert Contact.objects.count() == contacts
    assert logs_in(client, "admin", password)


def _lock_out(client, username: str) -> None:
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/login/", {"username": username, "password": "a guess"})
    assert client.post("/login/", {"username": username, "password": "a guess"}).status_code == 429


@pytest.mark.django_db
def test_make_run_gives_the_demo_admin_the_printed_password(tmp_path, client):
    # given a database that already holds the demo, whose admin has another password and has been
    # locked out by tries with the printed one (a new clone, or after `make clean`)
    call_command("seed_demo", "--contacts", "20", stdout=io.StringIO())
    make_admin(username="admin", password="chosen-on-another-machine")
    _lock_out(client, "admin")
    password_file, login_file = tmp_path / "demo-password", tmp_path / "login.json"
    # when make run's setup step runs with a fresh password file
    call_command(
        "demo_setup",
        "--password-file",
        str(password_file),
        "--reset-password",
        "--login-file",
        str(login_file),
        stdout=io.StringIO(),
    )
    # then the password it hands the banner is the one kept, and it logs in
    login = json.loads(login_file.read_text())
    assert login == {"username": "admin", "password": password_file.read_text().strip(), "note": ""}
    assert logs_in(client, "admin", login["password"])
    assert _crm_contacts() == 20  # and no second demo was loaded


@pytest.mark.django_db
def test_make_run_leaves_an_admin_the_demo_did_not_create(tmp_path, client):
    # given a database with someone's data (no demo), whose admin has their own password
    make_contact(email="someone@example.com")
    make_admin(username="admin", password="their-own-password")
    login_file = tmp_path / "login.json"
    call_command(
        "demo_setup",
        "--password-file",
        str(tmp_path / "demo-password"),
        "--reset-password",
        "--login-file",
        str(login_file),
        stdout=io.StringIO(),
    )
    # then the password is theirs still, and the banner says so instead of printing a wrong one
    login = json.loads(login_file.read_text())
    assert login["password"] == "" and "was not set up by the demo" in login["note"]
    assert logs_in(client, "admin", "their-own-password")


# --- the demo's dates (issue 19.7)


@pytest.mark.django_db
def test_every_seeded_date_is_possible():
    call_command("seed_demo", "--contacts", "80", stdout=io.StringIO())
    now = timezone.now()
    # people: on record before now, never seen in the future, first seen before last seen
    assert not Contact.objects.filter(created_at__gt=now).exists()
    assert not Contact.objects.filter(last_seen__gt=now).exists()
    assert not Contact.objects.filter(first_seen__gt=F("last_seen")).exists()
    assert not Contact.objects.filter(company__created_at__gt=F("created_at")).exists()
    # deals: opened after their person was on record, closed after they were opened, before now
    deals = Deal.objects.all()
    assert deals.count() == 75
    assert not deals.filter(created_at__gt=now).exists()
    assert not deals.filter(contact__created_at__gt=F("created_at")).exists()
    closed = deals.exclude(status=DealStatus.OPEN)
    assert closed.exists() and not closed.filter(closed_at__isnull=True).exists()
    assert not closed.filter(closed_at__lt=F("created_at")).exists(), "a negative sales cycle"
    assert not closed.filter(closed_at__gt=now).exists()
    assert not deals.filter(status=DealStatus.OPEN, closed_at__isnull=False).exists()
    assert not deals.filter(stage_entered_at__lt=F("created_at")).exists()
    assert not deals.filter(stage_entered_at__gt=now).exists()
    assert not closed.filter(stage_entered_at__gt=F("closed_at")).exists()
    # activities happened while their deal was open; next steps are not due before the deal existed
    activities = Activity.objects.filter(deal__isnull=False)
    assert activities.count() > 30
    assert not activities.filter(occurred_at__lt=F("deal__created_at")).exists()
    assert not activities.filter(occurred_at__gt=now).exists()
    assert not activities.filter(deal__closed_at__lt=F("occurred_at")).exists()
    assert not Task.objects.filter(due_at__lt=F("deal__created_at")).exists()
    # web history is in the past, and so is every segment's entry
    assert not ContactEvent.objects.filter(timestamp__gt=now).exists()
    assert not Membership.objects.filter(entered_at__gt=now).exists()
    # lost deals carry a reason from the list reps pick from
    reasons = set(LostReason.objects.values_list("name", flat=True))
    assert closed.filter(status=DealStatus.LOST).exists()
    assert set(closed.filter(status=DealStatus.LOST).values_list("lost_reason", flat=True)) <= reasons


@pytest.mark.django_db
def test_seed_demo_reuses_the_default_pipeline_and_lost_reasons():
    # given the defaults a fresh database gets from a data migration (get_or_create: where that
    # migration has run, they are there already)
    sales, _ = Pipeline.objects.get_or_create(name="Sales pipeline", defaults={"position": 0})
    stages = ["Qualified", "Contact made", "Demo scheduled", "Proposal made", "Negotiation"]
    for position, name in enumerate(stages):
        Stage.objects.get_or_create(pipeline=sales, name=name, defaults={"position": position})
    for position, name in enumerate(["Price", "Competitor", "No budget", "No decision", "Timing", "Other"]):
        LostReason.objects.get_or_create(name=name, defaults={"position": position})
    # when the demo is seeded
    call_command("seed_demo", "--contacts", "30", stdout=io.StringIO())
    # then its sales deals are on that pipeline, and nothing is doubled
    assert sorted(Pipeline.objects.values_list("name", flat=True)) == ["Renewals", "Sales pipeline"]
    assert Stage.objects.filter(pipeline=sales).count() == 5
    assert Deal.objects.filter(pipeline=sales).count() == 50
    assert LostReason.objects.count() == 6


# --- the CDP side of the demo (issue 19.13)


@pytest.mark.django_db
def test_seed_demo_fills_the_cdp_through_the_tracking_pipeline(client):
    from django.contrib.auth import get_user_model

    login = make_admin(username="demo-login")
    out = io.StringIO()
    call_command("seed_demo", "--contacts", "80", "--login", "demo-login", stdout=out)
    now = timezone.now()

    # the events came in through the API (stored, queued) and the queue is drained
    events = Event.objects.filter(source__name="Website")
    assert events.count() > 300
    assert queued_event_count() == 0
    # history kept its times: about three weeks of traffic, not all of it "now"
    oldest, newest = (
        events.aggregate(Min("timestamp"))["timestamp__min"],
        events.aggregate(Max("timestamp"))["timestamp__max"],
    )
    assert now - oldest > timedelta(days=14) and newest <= now
    assert events.filter(timestamp__lt=now - timedelta(days=7)).count() > events.count() // 4
    assert {"page", "identify", "track"} <= set(events.values_list("type", flat=True))

    # the CRM's people have web activity on their record
    crm_people = Contact.objects.filter(company__isnull=False, merged_into__isnull=True)
    with_web = crm_people.filter(pk__in=ContactEvent.objects.filter(type="page").values("contact_id"))
    assert with_web.count() > crm_people.count() // 4
    assert DailyActivity.objects.filter(contact__in=with_web).exists()
    # stitching joined anonymous history: page views sent before the person identified (no userId)
    # are on the CRM record, and the anonymous visitor is a tombstone merged into it
    anonymous_views = ContactEvent.objects.filter(
        contact__in=with_web, type="page", event__user_id="", event__anonymous_id__startswith="anon-"
    )
    assert anonymous_views.exists()
    merges = ContactMerge.objects.filter(winner__in=with_web)
    assert merges.exists()
    assert Contact.objects.filter(pk__in=merges.values("loser_id"), merged_into__isnull=False).count() == (
        merges.count()
    )
    # anonymous visitors stay anonymous; new sign-ups became identified leads
    assert Contact.objects.filter(is_identified=False, merged_into__isnull=True).count() >= 10
    signups = Contact.objects.filter(company__isnull=True, is_identified=True, merged_into__isnull=True)
    assert signups.exists() and set(signups.values_list("lifecycle_stage", flat=True)) == {"lead"}
    # first-touch attribution: UTMs from the landing page's campaign
    assert Contact.objects.filter(attribution__utm_source="google", attribution__utm_medium="cpc").exists()
    assert Contact.objects.filter(attribution__utm_source="linkedin").exists()
    # the crawler is stored but counts nowhere
    assert events.filter(is_bot=True).exists()
    assert not ContactEvent.objects.filter(
        is_bot=True, contact__in=Membership.objects.values("contact_id")
    ).exists()

    # segments, computed already
    segments = {s.name: s for s in Segment.objects.all()}
    assert {"Viewed pricing this week", "Leads from Google Ads"} <= set(segments)
    for segment in segments.values():
        members = Membership.objects.filter(segment=segment, exited_at__isnull=True).count()
        assert members > 0 and segment.member_count == members, segment.name
    google_leads = Membership.objects.filter(
        segment=segments["Leads from Google Ads"], exited_at__isnull=True
    )
    assert not google_leads.exclude(contact__lifecycle_stage="lead").exists()

    # hot deals: rules, alerts, and notifications, some of them in the demo login's bell
    assert HotRule.objects.filter(name="pricing", enabled=True).exists()
    assert HotRule.objects.count() >= 2
    assert HotDealAlert.objects.exists()
    assert Notification.objects.filter(title__startswith="Hot deal:").count() == HotDealAlert.objects.count()
    assert Notification.objects.filter(user=login, title__startswith="Hot deal:").exists()
    client.force_login(login)
    assert "Hot deal:" in client.get("/notifications/").content.decode()
    assert get_user_model().objects.filter(username="demo-login").count() == 1

    # activities for the reports
    assert Activity.objects.values("kind").distinct().count() == 4
    assert "web traffic:" in out.getvalue() and "demo ready in" in out.getvalue()

    # a second run adds nothing
    counts = (
        Event.objects.count(),
        Contact.objects.count(),
        Segment.objects.count(),
        Notification.objects.count(),
    )
    again = io.StringIO()
    call_command("seed_demo", "--contacts", "80", "--login", "demo-login", stdout=again)
    assert "web traffic: already there" in again.getvalue()
    assert counts == (
        Event.objects.count(),
        Contact.objects.count(),
        Segment.objects.count(),
        Notification.objects.count(),
    )


@pytest.mark.django_db
def test_demo_traffic_is_deterministic():
    from workspace.management.demo_traffic import traffic_generate

    call_command("seed_demo", "--contacts", "30", stdout=io.StringIO())
    now = timezone.now()
    first = traffic_generate(seed=7, now=now, count=30)
    assert traffic_generate(seed=7, now=now, count=30).messages == first.messages
    assert traffic_generate(seed=8, now=now, count=30).messages != first.messages
    # sent as a site's clients send: in time order, none from the future
    stamps = [m["timestamp"] for m in first.messages]
    assert stamps == sorted(stamps) and max(stamps) <= now.isoformat()
