from datetime import timedelta

import pytest
from django.utils import timezone

from identity import selectors
from identity.models import HotDealAlert, HotRule
from pipeline import services as pipeline_services
from pipeline.services import activities
from tests.factories import (
    add_rollup,
    default_hot_rule,
    make_contact,
    make_deal,
    make_pipeline,
    make_user,
    stages_of,
    stored_contact_event,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def reader():
    return make_user(role="Marketing", username="reader")


@pytest.fixture
def t0():
    return timezone.now().replace(microsecond=0) - timedelta(days=3)


def _paths(session):
    return [v.path for v in session.pages]


# --- sessions


def test_page_views_split_into_sessions_after_30_minutes_of_inactivity(reader, t0):
    # given an anonymous visit of three pages with 25-minute gaps, then a visit two hours later
    ada = make_contact(first_name="Ada")
    for minutes, path in ((0, "/"), (25, "/features"), (50, "/pricing"), (170, "/pricing"), (175, "/signup")):
        stored_contact_event(ada, at=t0 + timedelta(minutes=minutes), path=path)
    # when the sessions are read
    sessions, more = selectors.web_sessions(user=reader, contact=ada)
    # then there are two, newest first, each with its pages oldest first
    assert [_paths(s) for s in sessions] == [["/pricing", "/signup"], ["/", "/features", "/pricing"]]
    assert not more
    assert sessions[1].landing.path == "/"
    assert sessions[1].duration == timedelta(minutes=50)
    assert sessions[0].started_at == t0 + timedelta(minutes=170)


def test_a_gap_of_exactly_30_minutes_keeps_the_session(reader, t0):
    ada = make_contact(first_name="Ada")
    stored_contact_event(ada, at=t0, path="/a")
    stored_contact_event(ada, at=t0 + timedelta(minutes=30), path="/b")
    stored_contact_event(ada, at=t0 + timedelta(minutes=60, seconds=1), path="/c")
    sessions, _ = selectors.web_sessions(user=reader, contact=ada)
    assert [_paths(s) for s in sessions] == [["/c"], ["/a", "/b"]]


def test_sessions_page_with_load_more_and_skip_bots_and_other_people(reader, t0):
    ada, bob = make_contact(first_name="Ada"), make_contact(first_name="Bob")
    for hour in range(5):  # five visits, one page each
        stored_contact_event(ada, at=t0 + timedelta(hours=hour), path=f"/p{hour}")
    stored_contact_event(ada, at=t0 + timedelta(hours=2, minutes=5), path="/bot", is_bot=True)
    stored_contact_event(bob, at=t0 + timedelta(hours=2, minutes=6), path="/bob")
    stored_contact_event(ada, at=t0 + timedelta(hours=4, minutes=1), type="track", name="Clicked")
    first, more = selectors.web_sessions(user=reader, contact=ada, limit=2)
    assert [_paths(s) for s in first] == [["/p4"], ["/p3"]]
    assert more
    second, more = selectors.web_sessions(
        user=reader, contact=ada, started_before=first[-1].started_at, limit=2
    )
    assert [_paths(s) for s in second] == [["/p2"], ["/p1"]]
    assert more
    third, more = selectors.web_sessions(
        user=reader, contact=ada, started_before=second[-1].started_at, limit=2
    )
    assert [_paths(s) for s in third] == [["/p0"]]
    assert not more


def test_session_scan_reads_past_one_chunk(reader, t0, monkeypatch):
    monkeypatch.setattr(selectors, "SCAN_CHUNK", 3)
    ada = make_contact(first_name="Ada")
    for minute in range(8):  # one long session over several chunks
        stored_contact_event(ada, at=t0 + timedelta(minutes=minute), path=f"/{minute}")
    stored_contact_event(ada, at=t0 - timedelta(hours=2), path="/earlier")
    sessions, more = selectors.web_sessions(user=reader, contact=ada, limit=1)
    assert _paths(sessions[0]) == [f"/{m}" for m in range(8)]
    assert more


def test_landing_page_referrer_and_utm_come_from_the_first_event(reader, t0):
    ada = make_contact(first_name="Ada")
    stored_contact_event(
        ada,
        at=t0,
        path="/pricing",
        properties={
            "path": "/pricing",
            "referrer": "https://news.example/",
            "url": "https://site.example/pricing",
        },
        context={"campaign": {"source": "newsletter", "medium": "email", "name": "spring"}},
    )
    stored_contact_event(
        ada,
        at=t0 + timedelta(minutes=1),
        path="/docs",
        properties={"referrer": "https://site.example/pricing"},
    )
    stored_contact_event(
        ada,
        at=t0 + timedelta(hours=3),
        path="/",
        properties={"path": "/", "url": "https://site.example/?utm_source=ads&utm_campaign=x&other=1"},
    )
    newest, oldest = selectors.web_sessions(user=reader, contact=ada)[0]
    assert oldest.referrer == "https://news.example/"
    assert oldest.utm == {"utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "spring"}
    assert newest.utm == {"utm_source": "ads", "utm_campaign": "x"}
    assert newest.referrer == ""


# --- events and identities


def test_web_events_are_newest_first_in_keyset_pages(reader, t0):
    ada = make_contact(first_name="Ada")
    for i in range(5):
        stored_contact_event(
            ada, at=t0 + timedelta(minutes=i), type="track", name=f"E{i}", properties={"i": i}
        )
    stored_contact_event(ada, at=t0 + timedelta(minutes=2), type="track", name="Tie")  # same instant as E2
    seen = []
    cursor = None
    while True:
        page = selectors.web_events(user=reader, contact=ada, cursor=cursor, size=2)
        seen += [row.summary for row in page.rows]
        cursor = page.next_cursor
        if not cursor:
            break
    assert seen[:2] == ["E4", "E3"]
    assert sorted(seen) == sorted(["E0", "E1", "E2", "E3", "E4", "Tie"])
    assert len(seen) == 6


# --- the combined timeline


@pytest.fixture
def pipeline_stages():
    default_hot_rule()
    return stages_of(make_pipeline())


def test_timeline_interleaves_activities_stage_changes_sessions_and_events(reader, t0, pipeline_stages):
    rep = make_user(username="rep")
    ada = make_contact(first_name="Ada")
    stored_contact_event(ada, at=t0, path="/pricing")  # session 1
    stored_contact_event(ada, at=t0 + timedelta(minutes=5), path="/docs")
    activities.activity_log(
        actor=rep, kind="call", subject="Intro call", contact=ada, occurred_at=t0 + timedelta(hours=1)
    )
    stored_contact_event(ada, at=t0 + timedelta(hours=2), type="track", name="Signed Up")
    deal = pipeline_services.deal_create(actor=rep, title="Acme pilot", stage=pipeline_stages[0], contact=ada)
    pipeline_services.deal_move(deal=deal, to_stage=pipeline_stages[1], actor=rep)
    other = make_contact(first_name="Bob")
    activities.activity_log(actor=rep, kind="note", body="not Ada's", contact=other, occurred_at=t0)

    page = selectors.contact_timeline(user=reader, contact=ada)

    kinds = [item.kind for item in page.items]
    # the deal's two stage changes happened now; the rest days ago
    assert kinds == ["stage_change", "stage_change", "event", "activity", "session"]
    assert page.items[-1].obj.landing.path == "/pricing"
    assert page.next_cursor is None


def test_timeline_pages_cover_every_item_once(reader, t0):
    rep = make_user(username="rep")
    ada = make_contact(first_name="Ada")
    expected = set()
    for i in range(7):
        a = activities.activity_log(
            actor=rep, kind="note", body=f"n{i}", contact=ada, occurred_at=t0 + timedelta(hours=i)
        )
        expected.add(("activity", a.pk))
    # an event at exactly the same instant as an activity, and sessions between them
    e = stored_contact_event(ada, at=t0 + timedelta(hours=3), type="track", name="Tie")
    expected.add(("event", e.event_id))
    for i in range(4):
        v = stored_contact_event(ada, at=t0 + timedelta(hours=i, minutes=30), path=f"/s{i}")
        expected.add(("session", v.event_id))
    seen = []
    cursor = None
    for _ in range(20):
        page = selectors.contact_timeline(user=reader, contact=ada, cursor=cursor, size=3)
        seen += [(item.kind, item.key) for item in page.items]
        cursor = page.next_cursor
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == len(expected)
    assert set(seen) == expected
    times = [item for item in seen]
    assert times  # newest first across pages is checked by the sort key below
    keys = []
    cursor = None
    while True:
        page = selectors.contact_timeline(user=reader, contact=ada, cursor=cursor, size=4)
        keys += [item.sort_key for item in page.items]
        if not (cursor := page.next_cursor):
            break
    assert keys == sorted(keys, reverse=True)


def test_a_session_across_a_page_boundary_is_shown_whole(reader, t0):
    rep = make_user(username="rep")
    ada = make_contact(first_name="Ada")
    # a visit from t0 to t0+40m, and a call logged during it (t0+20m), plus newer notes
    for minutes in (0, 15, 30, 40):
        stored_contact_event(ada, at=t0 + timedelta(minutes=minutes), path=f"/{minutes}")
    activities.activity_log(
        actor=rep, kind="call", body="during", contact=ada, occurred_at=t0 + timedelta(minutes=20)
    )
    activities.activity_log(
        actor=rep, kind="note", body="later", contact=ada, occurred_at=t0 + timedelta(hours=5)
    )
    first = selectors.contact_timeline(user=reader, contact=ada, size=2)
    assert [i.kind for i in first.items] == ["activity", "activity"]  # later note, then the call
    second = selectors.contact_timeline(user=reader, contact=ada, cursor=first.next_cursor, size=2)
    assert [i.kind for i in second.items] == ["session"]
    assert _paths(second.items[0].obj) == ["/0", "/15", "/30", "/40"]


# --- deal signals


def test_deal_signals_count_pricing_views_this_week_and_last_seen(pipeline_stages):
    now = timezone.now()
    today = timezone.localdate(now)
    ada = make_contact(first_name="Ada")
    ada.last_seen = now - timedelta(hours=2)
    ada.save(update_fields=["last_seen"])
    add_rollup(ada, day=today, key="/pricing", count=2)
    add_rollup(ada, day=today - timedelta(days=3), key="/en/PRICING/enterprise", count=1)
    add_rollup(ada, day=today - timedelta(days=7), key="/pricing", count=9)  # last week: not counted
    add_rollup(ada, day=today, key="/docs", count=5)  # not pricing
    add_rollup(ada, day=today, key="Pricing Viewed", count=4, kind="event")  # an event, not a page
    deal = make_deal(pipeline_stages[0], contact=ada)
    quiet = make_deal(pipeline_stages[0])  # nobody on it

    signals = selectors.deal_signals(deal_ids=[deal.pk, quiet.pk], now=now)

    assert [(s.kind, s.label, s.hot) for s in signals[deal.pk]] == [
        ("views", "Viewed pricing 3\N{MULTIPLICATION SIGN} this week", False),
        ("last_seen", "Last seen 2h ago", False),
    ]
    assert signals[quiet.pk] == []


def test_deal_signals_sum_over_participants_and_flag_hot_deals(pipeline_stages):
    now = timezone.now()
    today = timezone.localdate(now)
    ada, bob = make_contact(first_name="Ada"), make_contact(first_name="Bob")
    add_rollup(ada, day=today, key="/pricing", count=1)
    add_rollup(bob, day=today, key="/pricing", count=2)
    deal = make_deal(pipeline_stages[0], contact=ada)
    deal.participants.add(bob)
    rule = default_hot_rule()
    HotDealAlert.objects.create(rule=rule, deal=deal, notified_at=now - timedelta(hours=1))

    [views] = selectors.deal_signals(deal_ids=[deal.pk], now=now)[deal.pk]

    assert views.label == "2 people viewed pricing 3\N{MULTIPLICATION SIGN} this week"
    assert views.hot
    # a day later the alert is outside the rule's 24-hour window: no longer hot
    [later] = selectors.deal_signals(deal_ids=[deal.pk], now=now + timedelta(hours=24))[deal.pk]
    assert not later.hot


def test_the_pricing_signal_follows_the_hot_rule_configuration(pipeline_stages):
    now = timezone.now()
    ada = make_contact(first_name="Ada")
    add_rollup(ada, day=timezone.localdate(now), key="/plans", count=4)
    deal = make_deal(pipeline_stages[0], contact=ada)
    assert selectors.deal_signals(deal_ids=[deal.pk], now=now)[deal.pk] == []
    HotRule.objects.filter(name="pricing").update(path_contains="/plans", name="plans")
    [signal] = selectors.deal_signals(deal_ids=[deal.pk], now=now)[deal.pk]
    assert signal.label == "Viewed plans 4\N{MULTIPLICATION SIGN} this week"
    HotRule.objects.update(enabled=False)
    assert selectors.deal_signals(deal_ids=[deal.pk], now=now)[deal.pk] == []


def test_deal_signals_cost_a_fixed_number_of_queries(
    pipeline_stages, django_assert_max_num_queries, settings
):
    settings.DEAL_SIGNAL_HOOKS = []  # identity's own six; tests/scoring pins the scores' hook
    now = timezone.now()
    deals = []
    for i in range(30):
        person = make_contact(first_name=f"P{i}")
        add_rollup(person, day=timezone.localdate(now), key="/pricing", count=i + 1)
        deals.append(make_deal(pipeline_stages[0], contact=person))
    with django_assert_max_num_queries(6):
        signals = selectors.deal_signals(deal_ids=[d.pk for d in deals], now=now)
    assert len(signals) == 30
    assert all(len(s) == 1 for s in signals.values())


def test_attribution_rows_put_known_keys_first_with_labels():
    ada = make_contact(first_name="Ada")
    ada.attribution = {
        "zeta": {"a": 1},
        "referrer": "https://r.example/",
        "utm_source": "ads",
        "utm_term": "",
    }
    rows = selectors.contact_attribution(contact=ada)
    assert [(r.label, r.value) for r in rows] == [
        ("UTM source", "ads"),
        ("Referrer", "https://r.example/"),
        ("Zeta", '{"a": 1}'),
    ]
