"""Bulk actions, saved views and list selectors behind the list pages."""

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from contacts import selectors, services
from contacts.models import Company, Contact, SavedView, company_search_text, contact_search_text
from core.pagination import decode_cursor, encode_cursor
from tests.factories import make_company, make_contact, make_user

pytestmark = pytest.mark.django_db


def test_contact_bulk_update_skips_other_reps_records_and_missing_ids(sales_user):
    other = make_user(role="Sales")
    mine = make_contact(first_name="Mine", owner=sales_user)
    theirs = make_contact(first_name="Theirs", owner=other)
    result = services.contact_bulk_update(
        actor=sales_user, contact_ids=[mine.pk, theirs.pk, 999999], owner=None, lifecycle_stage="customer"
    )
    assert (result.changed, result.skipped) == (1, 2)
    mine.refresh_from_db(), theirs.refresh_from_db()
    assert (mine.owner, mine.lifecycle_stage) == (None, "customer")
    assert (theirs.owner, theirs.lifecycle_stage) == (other, "lead")


def test_contact_bulk_update_refuses_bad_input_before_touching_rows(sales_user):
    contact = make_contact(first_name="Ada", tags=["a"])
    with pytest.raises(ValidationError):
        services.contact_bulk_update(actor=sales_user, contact_ids=[contact.pk], lifecycle_stage="king")
    with pytest.raises(ValidationError):
        services.contact_bulk_update(actor=sales_user, contact_ids=[contact.pk], add_tags=["x" * 51])
    contact.refresh_from_db()
    assert (contact.lifecycle_stage, contact.tags) == ("lead", ["a"])


def test_marketing_bulk_actions_change_nothing(marketing_user):
    contact = make_contact(first_name="Ada")
    company = make_company(name="Acme")
    assert services.contact_bulk_delete(actor=marketing_user, contact_ids=[contact.pk]).skipped == 1
    assert (
        services.company_bulk_update(actor=marketing_user, company_ids=[company.pk], owner=None).skipped == 1
    )
    assert services.company_bulk_delete(actor=marketing_user, company_ids=[company.pk]).skipped == 1
    assert Contact.objects.filter(pk=contact.pk).exists() and Company.objects.filter(pk=company.pk).exists()


def test_company_bulk_owner_and_delete(sales_user):
    other = make_user(role="Sales")
    pool = make_company(name="Pool")
    theirs = make_company(name="Theirs", owner=other)
    result = services.company_bulk_update(
        actor=sales_user, company_ids=[pool.pk, theirs.pk], owner=sales_user
    )
    assert (result.changed, result.skipped) == (1, 1)
    pool.refresh_from_db()
    assert pool.owner == sales_user
    assert services.company_bulk_delete(actor=sales_user, company_ids=[pool.pk, theirs.pk]).changed == 1
    assert list(Company.objects.values_list("name", flat=True)) == ["Theirs"]


def test_saved_view_create_overwrites_by_name(sales_user):
    services.saved_view_create(user=sales_user, entity="contact", name=" VIPs ", query="?tag=vip")
    services.saved_view_create(user=sales_user, entity="contact", name="VIPs", query="tag=vip&owner=me")
    assert list(SavedView.objects.values_list("name", "query")) == [("VIPs", "tag=vip&owner=me")]
    with pytest.raises(ValidationError):
        services.saved_view_create(user=sales_user, entity="contact", name="  ", query="")


def test_cursor_round_trip_and_garbage():
    from datetime import UTC, datetime

    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert decode_cursor(encode_cursor(when, 7, "next")) == (when, 7, "next")
    assert decode_cursor(encode_cursor("ada", 3, "prev")) == ("ada", 3, "prev")
    for garbage in ["", "x", "e30", encode_cursor("a", 1, "sideways"), "W1tdLDEsIm5leHQiXQ"]:
        assert decode_cursor(garbage) is None


def test_the_search_expressions_match_their_trigram_indexes():
    # given the expressions the selectors filter on (contacts.models.*_search_text)
    contacts = Contact.objects.alias(search=contact_search_text()).filter(search__contains="lovelace")
    companies = Company.objects.alias(search=company_search_text()).filter(search__contains="acme")
    # when plain scans are ruled out (an empty table would rather scan), then Postgres can use the
    # trigram indexes: they are built on the very same expressions. If the two drifted apart, the
    # search would silently scan 100k rows.
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        assert "contact_search_trgm" in contacts.explain()
        assert "company_search_trgm" in companies.explain()


def test_search_through_many_matching_companies_stays_correct(sales_user, monkeypatch):
    monkeypatch.setattr(selectors, "COMPANY_MATCH_LIST_MAX", 1)
    for i in range(3):
        make_company(name=f"Wonka {i}", domain=f"w{i}.example")
        make_contact(first_name=f"P{i}", email=f"p@w{i}.example")
    make_contact(first_name="Willy", last_name="Wonka")
    make_contact(first_name="Other")
    found = selectors.contact_list(user=sales_user, filters={"q": "wonka"})
    assert sorted(c.first_name for c in found) == ["P0", "P1", "P2", "Willy"]


def test_count_capped(sales_user):
    for i in range(4):
        make_contact(first_name=f"P{i}")
    assert selectors.count_capped(selectors.contact_list(user=sales_user), cap=3) == (3, True)
    assert selectors.count_capped(selectors.contact_list(user=sales_user), cap=10) == (4, False)
