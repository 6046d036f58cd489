"""The home page as a start page: a rep's day (Sales, Admin) and the audience and data health
(Marketing, Admin), each panel with an empty state, in a number of queries that does not grow
with the data."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import RecentView
from accounts.services import recent
from contacts.models import LifecycleStage
from events.models import RejectedEvent, Source
from identity.models import HotDealAlert
from pipeline import services as pipeline_services
from pipeline.models import Activity, DealStatus, Task
from segments.models import ChangeKind, MembershipChange, Segment
from tests.factories import (
    default_hot_rule,
    make_admin,
    make_company,
    make_contact,
    make_pipeline,
    make_user,
    stages_of,
    stored_contact_event,
)

pytestmark = pytest.mark.django_db

PANELS_SALES = ("home-tasks", "home-hot", "home-activity")
PANELS_MARKETING = ("home-segments", "home-sources")


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def rita():
    return make_user(role="Sales", username="rita", first_name="Rita")


@pytest.fixture
def mia():
    return make_user(role="Marketing", username="mia")


@pytest.fixture
def stage():
    return stages_of(make_pipeline())[0]


def _home(client, user) -> str:
    client.force_login(user)
    response = client.get(reverse("home"))
    assert response.status_code == 200
    return response.content.decode()


def _panel(html: str, testid: str) -> str:
    """The HTML of one panel (its <section>), to assert on what it shows and nothing else."""
    start = html.index(f'data-testid="{testid}"')
    return html[start : html.index("</section>", start)]


def _deal(stage, owner, title, **fields):
    return pipeline_services.deal_create(actor=None, title=title, stage=stage, owner=owner, **fields)


def _task(assignee, title, due_at, **fields):
    return Task.objects.create(title=title, assignee=assignee, due_at=due_at, **fields)


# --- Sales


def test_my_tasks_shows_overdue_and_today_with_a_complete_box(client, rita, now):
    other = make_user(role="Sales")
    contact = make_contact(first_name="Ada", last_name="Lovelace")
    _task(rita, "Call Ada back", now - timedelta(days=2), contact=contact)
    _task(rita, "Send the quote", now - timedelta(seconds=1))
    _task(rita, "Next week's demo", now + timedelta(days=3))
    _task(rita, "Already done", now - timedelta(hours=1), done=True, done_at=now)
    _task(rita, "Someday", None)
    _task(other, "Not mine", now - timedelta(hours=1))
    panel = _panel(_home(client, rita), "home-tasks")
    assert "Call Ada back" in panel and "Ada Lovelace" in panel
    assert "Send the quote" in panel
    assert panel.index("Call Ada back") < panel.index("Send the quote")  # the oldest first
    for absent in ("Next week", "Already done", "Someday", "Not mine"):
        assert absent not in panel
    # ticking the box completes the task through the task toggle, then comes back home
    task = Task.objects.get(title="Call Ada back")
    assert reverse("activities:task_toggle", args=[task.pk]) in panel
    response = client.post(
        reverse("activities:task_toggle", args=[task.pk]), {"done": "on", "next": reverse("home")}
    )
    assert response.status_code == 302 and response["Location"] == reverse("home")
    task.refresh_from_db()
    assert task.done
    assert "Call Ada back" not in _panel(_home(client, rita), "home-tasks")


def test_hot_deals_are_my_open_deals_alerted_within_the_rule_window(client, rita, stage, now):
    rule = default_hot_rule()  # 24 h window
    other = make_user(role="Sales")
    ada = make_contact(first_name="Ada")
    hot = _deal(stage, rita, "Acme pilot", contact=ada)
    stale = _deal(stage, rita, "Stale alert")
    theirs = _deal(stage, other, "Their deal")
    won = _deal(stage, rita, "Already won")
    won.status = DealStatus.WON
    won.save(update_fields=["status"])
    HotDealAlert.objects.create(rule=rule, deal=hot, notified_at=now - timedelta(hours=1))
    HotDealAlert.objects.create(rule=rule, deal=stale, notified_at=now - timedelta(hours=30))
    HotDealAlert.objects.create(rule=rule, deal=theirs, notified_at=now - timedelta(hours=1))
    HotDealAlert.objects.create(rule=rule, deal=won, notified_at=now - timedelta(hours=1))
    panel = _panel(_home(client, rita), "home-hot")
    assert "Acme pilot" in panel and "pricing" in panel and "Ada" in panel
    assert reverse("pipeline:deal_detail", args=[hot.pk]) in panel
    for absent in ("Stale alert", "Their deal", "Already won"):
        assert absent not in panel


def test_hot_leads_are_my_leads_viewing_the_watched_pages(client, rita, now):
    default_hot_rule()  # /pricing twice in 24 h
    keen = make_contact(first_name="Keen", owner=rita)
    once = make_contact(first_name="Once", owner=rita)
    customer = make_contact(first_name="Customer", owner=rita, lifecycle_stage=LifecycleStage.CUSTOMER)
    theirs = make_contact(first_name="Theirs", owner=make_user(role="Sales"))
    old = make_contact(first_name="Old", owner=rita)
    for contact in (keen, customer, theirs):
        stored_contact_event(contact, at=now - timedelta(hours=3), path="/pricing")
        stored_contact_event(contact, at=now - timedelta(minutes=5), path="/pricing/enterprise")
    stored_contact_event(keen, at=now - timedelta(minutes=4), path="/pricing")
    stored_contact_event(once, at=now - timedelta(minutes=5), path="/pricing")
    stored_contact_event(once, at=now - timedelta(minutes=4), path="/docs")
    stored_contact_event(old, at=now - timedelta(hours=30), path="/pricing")
    stored_contact_event(old, at=now - timedelta(hours=26), path="/pricing")
    panel = _panel(_home(client, rita), "home-hot")
    assert 'data-testid="hot-leads"' in panel
    assert "Keen" in panel and "3\N{MULTIPLICATION SIGN}" in panel
    for absent in ("Once", "Customer", "Theirs", "Old"):
        assert absent not in panel


def test_recent_activity_is_what_happened_on_records_i_own(client, rita, stage, now):
    colleague = make_user(role="Sales", first_name="Carl")
    mine = _deal(stage, rita, "Acme pilot")
    my_company = make_company(name="Initech", owner=rita)
    theirs = make_contact(first_name="Theirs", owner=colleague)
    Activity.objects.create(kind="call", subject="Budget call", deal=mine, author=colleague, occurred_at=now)
    Activity.objects.create(
        kind="note", subject="Met at the fair", company=my_company, occurred_at=now - timedelta(days=1)
    )
    Activity.objects.create(kind="note", subject="Not my record", contact=theirs, occurred_at=now)
    Activity.objects.create(
        kind="meeting", subject="Planned meeting", deal=mine, occurred_at=now + timedelta(days=2)
    )
    panel = _panel(_home(client, rita), "home-activity")
    assert "Budget call" in panel and "Acme pilot" in panel and "by Carl" in panel
    assert "Met at the fair" in panel and "Initech" in panel
    assert panel.index("Budget call") < panel.index("Met at the fair")
    assert "Not my record" not in panel and "Planned meeting" not in panel


def test_recently_viewed_lists_the_records_i_opened_newest_first(client, rita, stage):
    ada = make_contact(first_name="Ada", last_name="Lovelace")
    acme = make_company(name="Acme Corp")
    deal = _deal(stage, rita, "Acme pilot")
    gone = make_contact(first_name="Gone")
    client.force_login(rita)
    for url in (
        reverse("contacts:contact_detail", args=[gone.pk]),
        reverse("contacts:contact_detail", args=[ada.pk]),
        reverse("contacts:company_detail", args=[acme.pk]),
        reverse("pipeline:deal_detail", args=[deal.pk]),
        reverse("contacts:contact_detail", args=[ada.pk]),  # opened again: back on top
    ):
        assert client.get(url).status_code == 200
    gone.delete()
    panel = _panel(_home(client, rita), "home-viewed")
    assert panel.index("Ada Lovelace") < panel.index("Acme pilot") < panel.index("Acme Corp")
    assert panel.count("Ada Lovelace") == 1
    assert "Gone" not in panel
    # someone else's views are their own
    assert 'data-testid="viewed"' not in _panel(_home(client, make_user(role="Sales")), "home-viewed")


def test_recent_views_are_capped_per_user(rita):
    other = make_user(role="Sales")
    recent.recent_view_record(user=other, kind="contact", object_id=1)
    for object_id in range(1, recent.RECENT_VIEWS_PER_USER + 6):
        recent.recent_view_record(user=rita, kind="contact", object_id=object_id)
    kept = set(RecentView.objects.filter(user=rita).values_list("object_id", flat=True))
    assert kept == set(range(6, recent.RECENT_VIEWS_PER_USER + 6))  # the oldest five trimmed
    assert RecentView.objects.filter(user=other).count() == 1


def test_sales_panels_have_empty_states_and_no_marketing_panels(client, rita):
    html = _home(client, rita)
    for testid in (*PANELS_SALES, "home-viewed"):
        assert 'data-testid="empty"' in _panel(html, testid), testid
    for testid in PANELS_MARKETING:
        assert f'data-testid="{testid}"' not in html
    assert 'data-testid="stat-contacts"' in html  # the counters stay


# --- Marketing


def test_segment_movements_count_entries_and_exits_of_the_last_7_days(client, mia, now):
    vips = Segment.objects.create(name="VIPs")
    trial = Segment.objects.create(name="Trial users")
    Segment.objects.create(name="Quiet segment")
    people = [make_contact() for _ in range(4)]
    for contact in people[:3]:
        MembershipChange.objects.create(segment=vips, contact=contact, kind=ChangeKind.ENTERED, at=now)
    MembershipChange.objects.create(
        segment=vips, contact=people[3], kind=ChangeKind.EXITED, at=now - timedelta(days=6)
    )
    MembershipChange.objects.create(
        segment=vips, contact=people[3], kind=ChangeKind.ENTERED, at=now - timedelta(days=8)
    )
    MembershipChange.objects.create(
        segment=trial, contact=people[0], kind=ChangeKind.EXITED, at=now - timedelta(hours=1)
    )
    panel = _panel(_home(client, mia), "home-segments")
    assert "Quiet segment" not in panel
    rows = panel.split('data-testid="movement"')[1:]
    assert "VIPs" in rows[0] and "Trial users" in rows[1]  # the busiest first
    assert 'data-testid="entered">+3<' in rows[0] and 'data-testid="exited">\N{MINUS SIGN}1<' in rows[0]
    assert 'data-testid="entered">0<' in rows[1] and 'data-testid="exited">\N{MINUS SIGN}1<' in rows[1]


def test_source_health_shows_traffic_last_event_and_rejections(client, mia, now):
    web = Source.objects.create(name="Website")
    Source.objects.create(name="Mobile app")
    contact = make_contact()
    stored_contact_event(contact, at=now - timedelta(hours=1), path="/")  # on the "Website" source
    stored_contact_event(contact, at=now - timedelta(minutes=2), path="/pricing")
    stored_contact_event(contact, at=now - timedelta(days=2), path="/old")
    RejectedEvent.objects.create(source=web, received_at=now - timedelta(hours=2), reason="bad type")
    RejectedEvent.objects.create(source=web, received_at=now - timedelta(days=3), reason="too old")
    panel = _panel(_home(client, mia), "home-sources")
    mobile, website = panel.split('data-testid="source-health"')[1:]  # by name
    assert "Website" in website and 'data-testid="source-events">2<' in website
    assert "2\xa0minutes ago" in website
    assert f"/events/rejected/?source={web.pk}" in website and ">1</a>" in website
    assert "Mobile app" in mobile and 'data-testid="source-events">0<' in mobile
    assert "never" in mobile and "quiet" in mobile


def test_marketing_panels_have_empty_states_and_no_sales_panels(client, mia):
    html = _home(client, mia)
    for testid in (*PANELS_MARKETING, "home-viewed"):
        assert 'data-testid="empty"' in _panel(html, testid), testid
    for testid in PANELS_SALES:
        assert f'data-testid="{testid}"' not in html


# --- Admin, and the cost of the page


def _fill(owner, stage, *, n: int, now):
    """`n` of everything every panel shows, owned by `owner`."""
    rule = default_hot_rule()
    source = Source.objects.get_or_create(name="Website")[0]
    segment = Segment.objects.create(name=f"Segment {Segment.objects.count()}")
    for i in range(n):
        contact = make_contact(first_name=f"Lead{i}", owner=owner, company=make_company())
        deal = _deal(stage, owner, f"Deal {i}", contact=contact)
        HotDealAlert.objects.create(rule=rule, deal=deal, notified_at=now - timedelta(minutes=i + 1))
        stored_contact_event(contact, at=now - timedelta(minutes=3), path="/pricing")
        stored_contact_event(contact, at=now - timedelta(minutes=2), path="/pricing")
        lead = make_contact(first_name=f"Hot{i}", owner=owner)
        stored_contact_event(lead, at=now - timedelta(minutes=3), path="/pricing")
        stored_contact_event(lead, at=now - timedelta(minutes=2), path="/pricing")
        _task(owner, f"Task {i}", now - timedelta(hours=i + 1), deal=deal, contact=contact)
        Activity.objects.create(kind="call", subject=f"Call {i}", deal=deal, contact=contact, occurred_at=now)
        MembershipChange.objects.create(segment=segment, contact=contact, kind=ChangeKind.ENTERED, at=now)
        RejectedEvent.objects.create(source=source, received_at=now, reason="bad")
        recent.recent_view_record(user=owner, kind="deal", object_id=deal.pk)
        recent.recent_view_record(user=owner, kind="contact", object_id=contact.pk)
        recent.recent_view_record(user=owner, kind="company", object_id=contact.company_id)
        Source.objects.create(name=f"Source {Source.objects.count()}")


def test_admin_sees_every_panel_in_the_same_number_of_queries_with_more_data(client, stage, now):
    admin = make_admin(username="boss")
    client.force_login(admin)
    _fill(admin, stage, n=1, now=now)
    client.get(reverse("home"))  # warm the session and the caches
    with CaptureQueriesContext(connection) as few:
        html = client.get(reverse("home")).content.decode()
    for testid in (*PANELS_SALES, *PANELS_MARKETING, "home-viewed"):
        assert 'data-testid="empty"' not in _panel(html, testid), testid
    _fill(admin, stage, n=6, now=now)
    with CaptureQueriesContext(connection) as many:
        html = client.get(reverse("home")).content.decode()
    assert "Hot5" in html and "Task 5" in html and "Deal 5" in html
    assert len(many) == len(few), [q["sql"][:120] for q in many.captured_queries]
    assert len(many) <= 30


def test_my_tasks_link_their_deal(client, rita, stage, now):
    deal = _deal(stage, rita, "Acme <pilot>")
    _task(rita, "Send the quote", now - timedelta(minutes=5), deal=deal)
    panel = _panel(_home(client, rita), "home-tasks")
    assert f'href="{reverse("pipeline:deal_detail", args=[deal.pk])}"' in panel
    assert "Acme &lt;pilot&gt;" in panel
