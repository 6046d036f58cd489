import json
from datetime import date, datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from pipeline.models import Activity, Deal, DealStatus, Pipeline, Stage
from pipeline.selectors import reports as report_selectors
from pipeline.selectors.reports import ReportFilters
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def _at(day: str, hour: int = 12) -> datetime:
    return timezone.make_aware(datetime.fromisoformat(day).replace(hour=hour))


@pytest.fixture
def book(db):
    """Two reps' deals and activities with hand-computable figures."""
    sales = Pipeline.objects.create(name="Sales")
    lead = Stage.objects.create(pipeline=sales, name="Lead", position=0, probability=10)
    demo = Stage.objects.create(pipeline=sales, name="Demo", position=1, probability=40)
    Stage.objects.create(pipeline=sales, name="Contract", position=2, probability=80)  # empty
    ada, bob = make_user(username="ada"), make_user(username="bob")

    def deal(stage, amount, owner, **fields):
        created = fields.pop("created", None)
        d = Deal.objects.create(pipeline=sales, stage=stage, amount=Decimal(amount), owner=owner, **fields)
        if created:
            Deal.objects.filter(pk=d.pk).update(created_at=_at(created))
        return d

    deal(lead, 1000, ada, title="A", expected_close_date=date(2026, 1, 15))
    deal(demo, 2000, ada, title="B", expected_close_date=date(2026, 1, 20))
    deal(demo, 500, bob, title="C", expected_close_date=date(2026, 2, 3))
    deal(demo, 3000, ada, title="D", status=DealStatus.WON, created="2026-01-01", closed_at=_at("2026-01-11"))
    deal(lead, 400, ada, title="E", status=DealStatus.WON, created="2026-01-01", closed_at=_at("2026-01-21"))
    deal(demo, 700, bob, title="F", status=DealStatus.LOST, lost_reason="Price", closed_at=_at("2026-01-05"))
    for day, author in [("2026-01-06", ada), ("2026-01-07", ada), ("2026-01-12", ada), ("2026-01-13", bob)]:
        Activity.objects.create(
            kind="call", body="x", deal=Deal.objects.get(title="A"), author=author, occurred_at=_at(day)
        )
    return {"ada": ada, "bob": bob}


def test_pipeline_by_stage_counts_values_and_weights_open_deals(book):
    rows = report_selectors.pipeline_by_stage(user=book["ada"], filters=ReportFilters())
    assert [(r["name"], r["count"], r["value"], r["weighted"]) for r in rows] == [
        ("Lead", 1, Decimal("1000.00"), Decimal("100.00")),
        ("Demo", 2, Decimal("2500.00"), Decimal("1000.00")),
        ("Contract", 0, Decimal("0"), Decimal("0")),
    ]
    mine = report_selectors.pipeline_by_stage(
        user=book["ada"], filters=ReportFilters(owner_id=book["bob"].pk)
    )
    assert [(r["count"], r["value"]) for r in mine] == [(0, 0), (1, Decimal("500.00")), (0, 0)]
    # open deals were created today: a range in the past leaves every stage empty
    past = ReportFilters(date_from=date(2020, 1, 1), date_to=date(2020, 12, 31))
    assert {r["count"] for r in report_selectors.pipeline_by_stage(user=book["ada"], filters=past)} == {0}


def test_forecast_by_expected_close_month(book):
    rows = report_selectors.forecast_by_month(user=book["ada"], filters=ReportFilters())
    assert [(r["month"], r["count"], r["value"], r["weighted"]) for r in rows] == [
        (date(2026, 1, 1), 2, Decimal("3000.00"), Decimal("900.00")),
        (date(2026, 2, 1), 1, Decimal("500.00"), Decimal("200.00")),
    ]
    february = ReportFilters(date_from=date(2026, 2, 1), date_to=date(2026, 2, 28))
    assert [r["count"] for r in report_selectors.forecast_by_month(user=book["ada"], filters=february)] == [1]


def test_win_rate_and_sales_cycle_by_owner(book):
    rows = report_selectors.win_rate_by_owner(user=book["ada"], filters=ReportFilters())
    assert [
        (r["owner_name"], r["won"], r["lost"], r["win_rate"], r["won_value"], r["avg_cycle_days"])
        for r in rows
    ] == [
        ("ada", 2, 0, 100.0, Decimal("3400.00"), 15.0),
        ("bob", 0, 1, 0.0, Decimal("0"), None),
    ]
    # deals closed from 10 January on: bob's loss on the 5th drops out
    later = ReportFilters(date_from=date(2026, 1, 10), date_to=date(2026, 1, 31))
    assert [r["owner_name"] for r in report_selectors.win_rate_by_owner(user=book["ada"], filters=later)] == [
        "ada"
    ]


def test_activities_per_rep_per_week(book):
    rows = report_selectors.activities_per_rep_week(user=book["ada"], filters=ReportFilters())
    assert [(timezone.localtime(r["week"]).date(), r["author_name"], r["count"]) for r in rows] == [
        (date(2026, 1, 5), "ada", 2),
        (date(2026, 1, 12), "ada", 1),
        (date(2026, 1, 12), "bob", 1),
    ]
    only_bob = ReportFilters(owner_id=book["bob"].pk)
    assert [
        r["count"] for r in report_selectors.activities_per_rep_week(user=book["ada"], filters=only_bob)
    ] == [1]


def test_reports_page_shows_tables_and_chart_data_with_the_same_numbers(client, book):
    client.force_login(book["ada"])
    response = client.get("/reports/", {"owner": "", "date_from": "", "date_to": ""})
    html = response.content.decode()
    # the tables
    assert "Sales / Demo" in html and "2,500.00" in html and "1,000.00" in html
    assert "2026-01" in html and "900.00" in html and "100.0%" in html and "15.0 days" in html
    # the chart data, embedded as JSON (escaped by json_script)
    charts = json.loads(html.split('id="report-data" type="application/json">')[1].split("</script>")[0])
    assert charts["stages"]["weighted"] == [100.0, 1000.0, 0.0]
    assert charts["forecast"] == {
        "labels": ["2026-01", "2026-02"],
        "value": [3000.0, 500.0],
        "weighted": [900.0, 200.0],
    }
    assert charts["activities"]["series"] == [
        {"label": "ada", "data": [2, 1]},
        {"label": "bob", "data": [0, 1]},
    ]
    assert "vendor/chart.umd.min.js" in html
    # and the nav has the Reports item after Tasks
    assert 'href="/reports/"' in html and html.index('href="/tasks/"') < html.index('href="/reports/"')


def test_reports_page_filters_by_owner(client, book):
    client.force_login(book["ada"])
    html = client.get("/reports/", {"owner": book["bob"].pk}).content.decode()
    assert "Sales / Demo" in html and "3,400.00" not in html and "0.0%" in html


def test_reports_refuse_users_without_a_role(client):
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.create_user(username="nobody", password="x-1234567890"))
    assert client.get("/reports/").status_code == 403


def test_reports_page_query_count(client, book, django_assert_max_num_queries):
    client.force_login(book["ada"])
    with django_assert_max_num_queries(10):
        assert client.get("/reports/").status_code == 200
