"""The contact-list column hook (settings.CONTACT_LIST_COLUMN_HOOKS): a higher app's column is
shown, escaped, sorted with keyset pages and filtered, with form errors for bad filter input."""

import re

import pytest
from django import forms
from django.db.models import F, IntegerField, Value
from django.db.models.functions import Coalesce, Length

from contacts import selectors
from contacts.selectors import ListColumn
from tests.factories import make_contact

pytestmark = pytest.mark.django_db

HOOK = "tests.contacts.test_list_columns.columns_for_test"


def columns_for_test() -> list[ListColumn]:
    """A column holding the length of the contact's title, rendered with markup to escape."""
    return [
        ListColumn(
            key="test_title_len",
            label="Title length",
            annotate=lambda qs: qs.annotate(test_title_len=Length("title", output_field=IntegerField())),
            sort=Coalesce(F("test_title_len"), Value(0)),
            render=lambda value: f"<b>{value}</b>",
            filter_field=lambda: forms.IntegerField(min_value=0, label="Title at least"),
            filter=lambda qs, value: qs.filter(test_title_len__gte=value),
        )
    ]


@pytest.fixture
def hooked(settings, sales_user):
    settings.CONTACT_LIST_COLUMN_HOOKS = [HOOK]
    from contacts.models import ListColumns

    ListColumns.objects.create(user=sales_user, entity="contact", columns=["name", "test_title_len"])


def cells(response) -> list[str]:
    return re.findall(r'data-column="test_title_len">([^<]*(?:<[^/][^<]*)?)</td>', response.content.decode())


def names(response) -> list[str]:
    return re.findall(r'data-column="name"[^>]*>\s*<a href="[^"]+">([^<]+)</a>', response.content.decode())


def test_a_hooked_column_is_shown_escaped_and_offered_in_the_chooser(hooked, sales_client):
    make_contact(first_name="Ada", title="CTO")
    html = sales_client.get("/contacts/").content.decode()
    # the provider's markup is text: escaped, never rendered
    assert "&lt;b&gt;3&lt;/b&gt;" in html and "<b>3</b>" not in html
    assert 'value="test_title_len"' in html and "Title length" in html  # in the column chooser


def test_a_hooked_column_sorts_with_keyset_pages(hooked, sales_client, settings):
    for i in range(7):
        make_contact(first_name=f"P{i}", title="x" * ((i * 3) % 7))
    # sorted descending across pages of 3 (the page size is the list's, so use the selector)
    user = sales_client.get("/contacts/").wsgi_request.user
    columns = selectors.contact_list_columns()
    seen, cursor = [], None
    while True:
        page = selectors.contact_page(
            user=user, filters={}, sort="-test_title_len", cursor=cursor, size=3, columns=columns
        )
        seen += [(c.test_title_len, c.pk) for c in page.rows]
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert len(seen) == 7 and seen == sorted(seen, reverse=True)
    # and the page sorts by it when asked, the header linking to the other direction
    response = sales_client.get("/contacts/?sort=test_title_len")
    assert names(response)[0] == "P0"  # the empty title
    assert "sort=-test_title_len" in response.content.decode()


def test_a_hooked_column_filters_and_bad_input_is_a_form_error(hooked, sales_client):
    make_contact(first_name="Short", title="ab")
    make_contact(first_name="Long", title="abcdef")
    assert names(sales_client.get("/contacts/?col_test_title_len=4")) == ["Long"]
    bad = sales_client.get("/contacts/?col_test_title_len=-1")
    assert sorted(names(bad)) == ["Long", "Short"]  # the bad filter is left out ...
    assert 'data-testid="filter-errors"' in bad.content.decode()  # ... and said so


def test_bad_provider_keys_are_refused(settings):
    settings.CONTACT_LIST_COLUMN_HOOKS = ["tests.contacts.test_list_columns.bad_columns"]
    with pytest.raises(ValueError, match="bad or duplicate"):
        selectors.contact_list_columns()


def bad_columns() -> list[ListColumn]:
    return [ListColumn(key="name", label="Clash", annotate=lambda qs: qs)]


def test_without_providers_the_list_is_unchanged(sales_client):
    make_contact(first_name="Ada")
    assert selectors.contact_list_columns() == []
    assert names(sales_client.get("/contacts/")) == ["Ada"]
