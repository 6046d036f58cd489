import csv
import io

import pytest

from contacts.models import Contact, CustomField, FieldChange, ListColumns, SavedView
from tests.factories import make_company, make_contact, make_user

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def table(**extra):
    return {**HTMX, "HTTP_HX_TARGET": "contact-table", **extra}


@pytest.fixture
def sales_client(client, sales_user):
    client.force_login(sales_user)
    return client


def test_contact_list_full_page_and_htmx_partial(sales_client):
    # given two contacts
    make_contact(first_name="Ada", last_name="Lovelace", email="ada@example.com")
    make_contact(first_name="Grace", email="grace@example.com")
    # when the page is loaded normally, and as an htmx swap of the table
    full = sales_client.get("/contacts/?q=ada")
    partial = sales_client.get("/contacts/?q=ada", **table())
    # then the full page has the app shell, the search box and the filtered table
    html = full.content.decode()
    assert "<html" in html and 'id="list-filters"' in html and 'id="contact-table"' in html
    assert "Ada Lovelace" in html and "Grace" not in html
    # and the partial is only the table, in the same state
    body = partial.content.decode()
    assert "<html" not in body and 'id="list-filters"' not in body
    assert body.strip().startswith('<div id="contact-table"')
    assert "Ada Lovelace" in body and "Grace" not in body
    assert "1 contact" in body


def names_in(response) -> list[str]:
    """The record names in the list table, in order."""
    import re

    html = response.content.decode()
    return re.findall(r'data-column="name"[^>]*>\s*<a href="[^"]+">([^<]+)</a>', html)


def test_contact_list_filters_owner_lifecycle_tag_company_and_anonymous(sales_client, sales_user):
    other = make_user(role="Sales")
    acme = make_company(name="Acme", domain="acme.com")
    make_contact(first_name="Mine", owner=sales_user, lifecycle_stage="customer", tags=["vip"])
    make_contact(first_name="Theirs", owner=other, email="t@acme.com")
    make_contact(first_name="Pool")
    make_contact(first_name="Anon", is_identified=False)
    assert names_in(sales_client.get("/contacts/?owner=me")) == ["Mine"]
    assert names_in(sales_client.get("/contacts/?owner=none")) == ["Pool"]
    assert names_in(sales_client.get("/contacts/?lifecycle_stage=customer")) == ["Mine"]
    assert names_in(sales_client.get("/contacts/?tag=VIP")) == ["Mine"]
    assert names_in(sales_client.get(f"/contacts/?company={acme.pk}")) == ["Theirs"]
    # "identified only" is on by default; the anonymous visitor appears on request
    assert "Anon" not in names_in(sales_client.get("/contacts/"))
    assert "Anon" in names_in(sales_client.get("/contacts/?anon=on"))


def test_contact_list_filters_date_ranges_and_custom_fields(sales_client):
    from datetime import timedelta

    from django.utils import timezone

    CustomField.objects.create(
        entity="contact", key="plan", label="Plan", field_type="choice", choices=["Pro", "Free"]
    )
    CustomField.objects.create(entity="contact", key="seats", label="Seats", field_type="number")
    old = make_contact(first_name="Old", custom_fields={"plan": "Pro", "seats": 5})
    make_contact(first_name="New", custom_fields={"plan": "Free", "seats": 50})
    long_ago = timezone.now() - timedelta(days=40)
    Contact.objects.filter(pk=old.pk).update(created_at=long_ago, last_seen=long_ago)
    day = (long_ago - timedelta(days=1)).date().isoformat()
    day_after = (long_ago + timedelta(days=1)).date().isoformat()
    assert names_in(sales_client.get(f"/contacts/?created_from={day}&created_to={day_after}")) == ["Old"]
    assert names_in(sales_client.get(f"/contacts/?seen_from={day}&seen_to={day_after}")) == ["Old"]
    assert names_in(sales_client.get("/contacts/?cf_plan=Free")) == ["New"]
    assert names_in(sales_client.get("/contacts/?cf_seats=5")) == ["Old"]
    # an unparseable filter value is reported and ignored, not a server error
    response = sales_client.get("/contacts/?created_from=yesterday")
    assert response.status_code == 200 and 'data-testid="filter-errors"' in response.content.decode()


def test_contact_list_sorts_by_a_column_and_the_header_flips_it(sales_client):
    for name in ("Carol", "alice", "Bob"):
        make_contact(first_name=name)
    # default: newest first
    assert names_in(sales_client.get("/contacts/")) == ["Bob", "alice", "Carol"]
    asc = sales_client.get("/contacts/?sort=name")
    assert names_in(asc) == ["alice", "Bob", "Carol"]
    assert 'aria-sort="ascending"' in asc.content.decode()
    assert "?sort=-name" in asc.content.decode()  # a second click sorts descending
    assert names_in(sales_client.get("/contacts/?sort=-name")) == ["Carol", "Bob", "alice"]
    # an unknown sort key falls back to the default instead of failing
    assert names_in(sales_client.get("/contacts/?sort=password")) == ["Bob", "alice", "Carol"]


def test_contact_list_pages_with_a_cursor_forward_and_back(sales_client):
    import re

    # given 120 contacts with equal created_at for some (ties broken by id)
    Contact.objects.bulk_create(Contact(first_name=f"P{i:03d}", email=f"p{i}@x.com") for i in range(120))
    first = sales_client.get("/contacts/?sort=name")
    page1 = names_in(first)
    assert page1 == [f"P{i:03d}" for i in range(50)]
    assert 'data-testid="prev-page"' not in first.content.decode()
    next_url = re.search(r'href="([^"]+)"[^>]*data-testid="next-page"', first.content.decode()).group(1)
    second = sales_client.get(next_url.replace("&amp;", "&"))
    assert names_in(second) == [f"P{i:03d}" for i in range(50, 100)]
    third_url = re.search(r'href="([^"]+)"[^>]*data-testid="next-page"', second.content.decode()).group(1)
    third = sales_client.get(third_url.replace("&amp;", "&"))
    assert names_in(third) == [f"P{i:03d}" for i in range(100, 120)]
    assert 'data-testid="next-page"' not in third.content.decode()
    prev_url = re.search(r'href="([^"]+)"[^>]*data-testid="prev-page"', third.content.decode()).group(1)
    assert names_in(sales_client.get(prev_url.replace("&amp;", "&"))) == [f"P{i:03d}" for i in range(50, 100)]
    # a forged cursor starts over at the first page instead of failing
    assert names_in(sales_client.get("/contacts/?sort=name&cursor=not-a-cursor")) == page1


def test_column_chooser_is_remembered_per_user(sales_client, sales_user):
    make_contact(first_name="Ada", phone="+1 555 0100", title="CTO")
    response = sales_client.post(
        "/contacts/columns/", {"columns": ["name", "phone", "nonsense"], "query": "q=ada"}, **table()
    )
    assert response.status_code == 200
    assert ListColumns.objects.get(user=sales_user, entity="contact").columns == ["name", "phone"]
    html = sales_client.get("/contacts/").content.decode()
    assert 'data-column="phone"' in html and 'data-column="email"' not in html
    # another user still sees the defaults
    other = make_user(role="Sales")
    sales_client.force_login(other)
    assert 'data-column="email"' in sales_client.get("/contacts/").content.decode()


def test_saved_views_are_per_user_and_replay_their_query(sales_client, sales_user):
    make_contact(first_name="Vip", tags=["vip"])
    make_contact(first_name="Plain")
    response = sales_client.post("/contacts/views/", {"name": "VIPs", "query": "tag=vip&cursor=abc"})
    view = SavedView.objects.get(user=sales_user)
    assert view.query == "tag=vip"  # the cursor is not part of a view
    assert response.status_code == 302 and response["Location"] == "/contacts/?tag=vip"
    html = sales_client.get("/contacts/").content.decode()
    assert "VIPs" in html and 'href="/contacts/?tag=vip"' in html
    assert "My contacts" in html and "No owner" in html
    # another user can neither see nor delete it
    other = make_user(role="Sales")
    sales_client.force_login(other)
    assert "VIPs" not in sales_client.get("/contacts/").content.decode()
    sales_client.post(f"/saved-views/{view.pk}/delete/")
    assert SavedView.objects.filter(pk=view.pk).exists()


def test_bulk_edit_changes_what_the_rep_may_change_and_reports_the_rest(sales_client, sales_user):
    other = make_user(role="Sales")
    mine = make_contact(first_name="Mine", owner=sales_user, tags=["old", "keep"])
    pool = make_contact(first_name="Pool", tags=["old"])
    theirs = make_contact(first_name="Theirs", owner=other, tags=["old"])
    response = sales_client.post(
        "/contacts/bulk/",
        {
            "ids": [mine.pk, pool.pk, theirs.pk],
            "action": "edit",
            "lifecycle_stage": "customer",
            "add_tags": "won, Q3",
            "remove_tags": "old",
            "query": "",
        },
        **table(),
    )
    html = response.content.decode()
    assert "2 contacts updated. 1 skipped" in html
    mine.refresh_from_db(), pool.refresh_from_db(), theirs.refresh_from_db()
    assert (mine.lifecycle_stage, mine.tags) == ("customer", ["keep", "q3", "won"])
    assert (pool.lifecycle_stage, pool.tags) == ("customer", ["q3", "won"])
    assert (theirs.lifecycle_stage, theirs.tags) == ("lead", ["old"])
    # and field history was written for the changed ones
    assert FieldChange.objects.filter(object_id=mine.pk, field="lifecycle_stage").exists()


def test_bulk_owner_and_delete(sales_client, sales_user):
    other = make_user(role="Sales")
    pool = make_contact(first_name="Pool")
    theirs = make_contact(first_name="Theirs", owner=other)
    sales_client.post("/contacts/bulk/", {"ids": [pool.pk], "action": "edit", "owner": sales_user.pk})
    pool.refresh_from_db()
    assert pool.owner == sales_user
    response = sales_client.post(
        "/contacts/bulk/", {"ids": [pool.pk, theirs.pk], "action": "delete"}, **table()
    )
    assert "1 contact deleted. 1 skipped" in response.content.decode()
    assert list(Contact.objects.values_list("first_name", flat=True)) == ["Theirs"]


def test_inline_edit_of_a_cell_saves_and_re_renders_it(sales_client, sales_user):
    contact = make_contact(first_name="Ada", phone="1", owner=sales_user)
    edit = sales_client.get(f"/contacts/{contact.pk}/cell/phone/?edit=1", **HTMX)
    assert 'name="phone"' in edit.content.decode() and 'value="1"' in edit.content.decode()
    saved = sales_client.post(f"/contacts/{contact.pk}/cell/phone/", {"phone": "+44 20 7946 0000"}, **HTMX)
    assert saved.status_code == 200
    assert "+44 20 7946 0000" in saved.content.decode() and "<input" not in saved.content.decode()
    assert "record-changed" in saved["HX-Trigger"]
    contact.refresh_from_db()
    assert contact.phone == "+44 20 7946 0000"
    assert FieldChange.objects.get(object_id=contact.pk, field="phone").new_value == "+44 20 7946 0000"


def test_inline_edit_shows_validation_and_conflict_errors_in_place(sales_client, sales_user):
    make_contact(first_name="Grace", email="grace@example.com")
    contact = make_contact(first_name="Ada", email="ada@example.com", owner=sales_user)
    bad = sales_client.post(f"/contacts/{contact.pk}/cell/email/", {"email": "not an email"}, **HTMX)
    assert bad.status_code == 422
    assert 'data-testid="cell-error"' in bad.content.decode() and "valid email" in bad.content.decode()
    dup = sales_client.post(f"/contacts/{contact.pk}/cell/email/", {"email": "GRACE@example.com"}, **HTMX)
    assert dup.status_code == 422
    assert "already has the email grace@example.com" in dup.content.decode()
    contact.refresh_from_db()
    assert contact.email == "ada@example.com"


def test_inline_edit_of_a_custom_field_and_of_the_name(sales_client, sales_user):
    CustomField.objects.create(entity="contact", key="seats", label="Seats", field_type="number")
    contact = make_contact(first_name="Ada", owner=sales_user)
    ok = sales_client.post(f"/contacts/{contact.pk}/cell/cf_seats/", {"cf_seats": "12"}, **HTMX)
    assert ok.status_code == 200 and ">12<" in ok.content.decode().replace(" ", "").replace("\n", "")
    bad = sales_client.post(f"/contacts/{contact.pk}/cell/cf_seats/", {"cf_seats": "many"}, **HTMX)
    assert bad.status_code == 422 and "is not a number" in bad.content.decode()
    sales_client.post(
        f"/contacts/{contact.pk}/cell/name/", {"first_name": "Augusta", "last_name": "King"}, **HTMX
    )
    contact.refresh_from_db()
    assert (contact.first_name, contact.last_name, contact.custom_fields) == (
        "Augusta",
        "King",
        {"seats": 12},
    )


def test_csv_export_streams_the_current_filter_with_formulas_defused(sales_client):
    make_contact(first_name='=HYPERLINK("http://evil")', last_name="@SUM(A1)", tags=["vip"])
    make_contact(first_name="Plain")
    response = sales_client.get("/contacts/export.csv?tag=vip")
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:4] == ["id", "first_name", "last_name", "email"]
    assert len(rows) == 2
    assert rows[1][1] == '\'=HYPERLINK("http://evil")' and rows[1][2] == "'@SUM(A1)"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+1 555", "'+1 555"),
        ("-2", "'-2"),
        ("@x", "'@x"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("ok", "ok"),
        (None, ""),
        (3, "3"),
    ],
)
def test_csv_safe(value, expected):
    from contacts.views import csv_safe

    assert csv_safe(value) == expected
