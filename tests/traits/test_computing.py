"""Every trait kind and window, computed by the realtime refresh and the full recompute."""

import datetime as dt

import pytest
from django.utils import timezone

from contacts.models import Contact
from tests.factories import make_company, make_contact, stored_page, stored_track
from tests.traits.helpers import all_values, make_trait, values_of
from traits import services
from traits.models import CompanyTraitValue, TraitValue
from traits.services import computing

pytestmark = pytest.mark.django_db


@pytest.fixture
def shopper():
    contact = make_contact(first_name="Ada")
    stored_track(
        contact, "Order Completed", days_ago=40, properties={"total": 100, "plan": "basic", "sku": "a"}
    )
    stored_track(
        contact, "Order Completed", days_ago=10, properties={"total": 30.5, "plan": "pro", "sku": "b"}
    )
    stored_track(contact, "Order Completed", days_ago=2, properties={"total": 20, "plan": "pro", "sku": "a"})
    stored_track(
        contact, "Order Completed", days_ago=1, properties={"total": "n/a", "plan": "team", "sku": "c"}
    )
    stored_track(contact, "Signed Up", days_ago=50, properties={"plan": "free"})
    stored_page(contact, "/pricing", days_ago=3)
    stored_track(contact, "Order Completed", days_ago=1, properties={"total": 999}, is_bot=True)
    return contact


def order(**fields):
    return {"event_type": "track", "event_name": "Order Completed", **fields}


def test_every_kind_over_ever(shopper):
    make_trait("orders", "count", **order())
    make_trait("events", "count")
    make_trait("revenue", "sum", property="total", **order())
    make_trait("avg_order", "avg", property="total", **order())
    make_trait("min_order", "min", property="total", **order())
    make_trait("max_order", "max", property="total", **order())
    make_trait("first_plan", "first", property="plan")
    make_trait("last_plan", "last", property="plan")
    make_trait("top_plan", "most_frequent", property="plan")
    make_trait("skus", "unique_list", property="sku")
    make_trait("sku_count", "unique_count", property="sku")
    make_trait("pages", "count", event_type="page")
    services.traits_refresh_contacts(contact_ids=[shopper.pk])
    assert values_of(shopper) == {
        "orders": 4,  # the bot's order is left out
        "events": 6,
        "revenue": 150.5,  # "n/a" is not a number: not summed
        "avg_order": pytest.approx(150.5 / 3),
        "min_order": 20,
        "max_order": 100,
        "first_plan": "free",
        "last_plan": "team",
        "top_plan": "pro",
        "skus": ["a", "b", "c"],
        "sku_count": 3,
        "pages": 1,
    }


def test_windows_and_conditions(shopper):
    make_trait("orders_30d", "count", window_days=30, **order())
    make_trait("revenue_7d", "sum", property="total", window_days=7, **order())
    make_trait(
        "pro_orders", "count", conditions=[{"property": "plan", "operator": "eq", "value": "pro"}], **order()
    )
    make_trait(
        "big_orders", "count", conditions=[{"property": "total", "operator": "gte", "value": 30}], **order()
    )
    make_trait(
        "not_pro", "count", conditions=[{"property": "plan", "operator": "neq", "value": "pro"}], **order()
    )
    make_trait("t_plans", "count", conditions=[{"property": "plan", "operator": "contains", "value": "EA"}])
    make_trait("today", "count", window_days=1, **order())
    services.traits_refresh_contacts(contact_ids=[shopper.pk])
    values = values_of(shopper)
    assert values == {
        "orders_30d": 3,
        "revenue_7d": 20,
        "pro_orders": 2,
        "big_orders": 2,  # 100 and 30.5; "n/a" is no number
        "not_pro": 2,  # basic, team (a missing plan would count too)
        "t_plans": 1,  # "team", case-insensitive
        "today": 0,
    }
    # a windowed value knows when it changes: its oldest counted day leaves the window
    row = TraitValue.objects.get(trait__key="orders_30d", contact=shopper)
    oldest = (timezone.now() - dt.timedelta(days=10)).astimezone(dt.UTC).date()
    assert row.expires_at == dt.datetime.combine(oldest + dt.timedelta(days=30), dt.time.min, tzinfo=dt.UTC)


def test_refresh_and_recompute_agree_and_vanished_values_go(shopper):
    other = make_contact(first_name="Bob")
    stored_track(other, "Order Completed", properties={"total": 5})
    make_trait("orders", "count", **order())
    make_trait("revenue", "sum", property="total", **order())
    make_trait("plans", "unique_list", property="plan")
    services.traits_recompute()
    recomputed = all_values()
    TraitValue.objects.all().delete()
    services.traits_refresh_contacts(contact_ids=[shopper.pk, other.pk])
    assert all_values() == recomputed
    # the events go (erasure, retention): the values go with them
    from identity.models import ContactEvent

    ContactEvent.objects.filter(contact=other).delete()
    assert services.traits_refresh_contacts(contact_ids=[other.pk]) == {other.pk}
    assert values_of(other) == {"orders": 0, "revenue": None, "plans": []}
    assert not TraitValue.objects.filter(contact=other).exists()
    # nothing changed: nothing written, nothing reported
    assert services.traits_refresh_contacts(contact_ids=[shopper.pk]) == set()


def test_a_tombstone_loses_its_values_and_a_deleted_contact_its_rows(shopper):
    make_trait("orders", "count", **order())
    services.traits_recompute()
    winner = make_contact(first_name="Winner")
    from identity.models import ContactEvent

    ContactEvent.objects.filter(contact=shopper).update(contact=winner)
    Contact.objects.filter(pk=shopper.pk).update(merged_into=winner)
    services.traits_refresh_contacts(contact_ids=[winner.pk, shopper.pk])
    assert values_of(winner)["orders"] == 4
    assert not TraitValue.objects.filter(contact=shopper).exists()
    winner.delete()
    assert not TraitValue.objects.exists()


def test_windows_expire_on_schedule_with_a_frozen_clock(monkeypatch):
    contact = make_contact()
    start = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    clock = [start]
    monkeypatch.setattr(computing.timezone, "now", lambda: clock[0])
    stored_track(contact, "Order Completed", at=start - dt.timedelta(days=29))  # Jan 31st
    stored_track(contact, "Order Completed", at=start - dt.timedelta(days=5))
    make_trait("orders_30d", "count", window_days=30, **order())
    services.traits_refresh_contacts(contact_ids=[contact.pk])
    assert values_of(contact)["orders_30d"] == 2
    # later the same day: nothing expired
    clock[0] = start + dt.timedelta(hours=11)
    assert services.traits_windows_expire() == set()
    # after midnight the first order is 30 days old: it ages out, and only then
    clock[0] = dt.datetime(2026, 3, 2, 0, 1, tzinfo=dt.UTC)
    assert services.traits_windows_expire() == {contact.pk}
    assert values_of(contact)["orders_30d"] == 1
    clock[0] = dt.datetime(2026, 3, 27, 0, 1, tzinfo=dt.UTC)
    assert services.traits_windows_expire() == {contact.pk}
    assert values_of(contact)["orders_30d"] == 0
    assert not TraitValue.objects.exists()


def test_account_traits_roll_up_and_follow_a_contact_moving_company():
    acme, globex = make_company(name="Acme"), make_company(name="Globex")
    a = make_contact(company=acme)
    b = make_contact(company=acme)
    c = make_contact(company=globex)
    for contact, totals in ((a, [10, 20]), (b, [5]), (c, [7])):
        for total in totals:
            stored_track(contact, "Order Completed", properties={"total": total})
    revenue = make_trait("revenue", "sum", property="total", **order())
    make_trait("acme_revenue", "account_sum", source=revenue)
    make_trait("best_buyer", "account_max", source=revenue)
    make_trait("buyers", "account_count", source=revenue)
    services.traits_recompute()
    by = {(r.trait.key, r.company_id): r.number for r in CompanyTraitValue.objects.select_related("trait")}
    assert by == {
        ("acme_revenue", acme.pk): 35,
        ("best_buyer", acme.pk): 30,
        ("buyers", acme.pk): 2,
        ("acme_revenue", globex.pk): 7,
        ("best_buyer", globex.pk): 7,
        ("buyers", globex.pk): 1,
    }
    # b moves to Globex: the CRM edit reaches the refresh (ProfileUpdate); both companies follow
    Contact.objects.filter(pk=b.pk).update(company=globex)
    services.traits_refresh_contacts(contact_ids=[b.pk])
    recomputed_by_refresh = all_values()
    services.traits_recompute()
    assert all_values() == recomputed_by_refresh
    assert CompanyTraitValue.objects.get(trait__key="acme_revenue", company=acme).number == 30
    assert CompanyTraitValue.objects.get(trait__key="buyers", company=globex).number == 2


def test_property_keys_and_values_are_parameters_not_sql(shopper):
    make_trait(
        "evil", "count", conditions=[{"property": "plan'); DROP TABLE x; --", "operator": "eq", "value": "'"}]
    )
    make_trait("evil_sum", "sum", property="total') --")
    services.traits_recompute()
    assert values_of(shopper)["evil"] == 0 and values_of(shopper)["evil_sum"] is None


def test_erasure_removes_the_persons_trait_values(admin_user, django_capture_on_commit_callbacks):
    from privacy import services as privacy

    acme = make_company(name="Acme")
    person, bystander = make_contact(email="gone@example.com", company=acme), make_contact(company=acme)
    for contact in (person, bystander):
        stored_track(contact, "Order Completed", properties={"sku": "a"})
    orders = make_trait("orders", "count")
    make_trait("skus", "unique_list", property="sku")
    make_trait("buyers", "account_count", source=orders)
    services.traits_recompute()
    assert TraitValue.objects.filter(contact=person).count() == 2
    request = privacy.person_erase_request(actor=admin_user, contact=person)
    with django_capture_on_commit_callbacks(execute=True):
        privacy.person_erase(request_id=request.pk)
    assert not TraitValue.objects.filter(contact_id=person.pk).exists()
    assert values_of(bystander) == {"orders": 1, "skus": ["a"]}
    # the company's roll-up no longer counts the erased person
    assert CompanyTraitValue.objects.get(trait__key="buyers", company=acme).number == 1
