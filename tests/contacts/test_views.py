import csv
import io

import pytest

from contacts.models import Contact, CustomField, FieldChange, ListColumns, SavedView
from tests.factories import make_company, make_contact, make_user

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def table(**extra):
    return {**HTMX, "HTTP_HX_TARGET": "contact-table", **extra}


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
    by_company = sales_client.get(f"/contacts/?company={acme.pk}")
    assert names_in(by_company) == ["Theirs"]
    assert 'data-testid="filter-company">Acme<' in by_company.content.decode()
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
    from core.csv import csv_safe

    assert csv_safe(value) == expected


# --- detail pages


def test_contact_detail_shows_properties_history_timeline_and_deals_hook(sales_client, sales_user):
    acme = make_company(name="Acme", domain="acme.com")
    contact = make_contact(first_name="Ada", email="ada@acme.com", owner=sales_user, tags=["vip"])
    sales_client.post(f"/contacts/{contact.pk}/cell/title/", {"title": "CTO"}, **HTMX)
    html = sales_client.get(f"/contacts/{contact.pk}/").content.decode()
    assert 'data-testid="record-title">Ada<' in html
    assert f'href="/companies/{acme.pk}/"' in html and "Acme" in html
    assert ">vip<" in html and "CTO" in html
    # field history names the change and who made it
    assert "title" in html and "sales-user" in html
    # the timeline lazy-loads the identity app's combined timeline (which holds the activity
    # panel), the web activity panel, and the deals panel
    assert 'id="timeline-slots"' in html and f'hx-get="/contacts/{contact.pk}/timeline/"' in html
    assert f'hx-get="/contacts/{contact.pk}/web-activity/"' in html
    assert f'hx-get="/pipeline/contacts/{contact.pk}/deals/"' in html
    # the rep owns it, so the cells are editable
    assert f'hx-get="/contacts/{contact.pk}/cell/phone/?edit=1"' in html


def test_merged_contact_url_redirects_to_the_survivor(sales_client):
    survivor = make_contact(first_name="Survivor")
    middle = make_contact(first_name="Middle", merged_into=survivor)
    old = make_contact(first_name="Old", merged_into=middle)
    response = sales_client.get(f"/contacts/{old.pk}/")
    assert response.status_code == 301 and response["Location"] == f"/contacts/{survivor.pk}/"


def test_unknown_contact_is_404(sales_client):
    assert sales_client.get("/contacts/999999/").status_code == 404


def test_company_detail_lists_its_contacts(sales_client):
    acme = make_company(name="Acme", domain="acme.com")
    make_contact(first_name="Ada", email="ada@acme.com")
    make_contact(first_name="Gone", email="gone@acme.com", merged_into=make_contact(first_name="Other"))
    make_contact(first_name="Elsewhere", email="x@other.com")
    html = sales_client.get(f"/companies/{acme.pk}/").content.decode()
    assert "Contacts (1)" in html and ">Ada<" in html
    assert "Gone" not in html and "Elsewhere" not in html
    assert f'hx-get="/pipeline/companies/{acme.pk}/deals/"' in html


def test_field_history_partial_reloads_after_an_edit(sales_client, sales_user):
    contact = make_contact(first_name="Ada", owner=sales_user)
    sales_client.post(
        f"/contacts/{contact.pk}/cell/lifecycle_stage/", {"lifecycle_stage": "customer"}, **HTMX
    )
    html = sales_client.get(f"/contacts/{contact.pk}/history/", **HTMX).content.decode()
    assert "Lifecycle</span>:" in html and "→ <span>customer</span>" in html and "<html" not in html


# --- create and edit


def test_quick_add_modal_creates_and_tells_the_list_to_refresh(sales_client, sales_user):
    form = sales_client.get("/contacts/quick-add/", **HTMX)
    assert 'data-testid="quick-add-form"' in form.content.decode() and "<html" not in form.content.decode()
    response = sales_client.post(
        "/contacts/quick-add/",
        {"first_name": "Ada", "email": "ADA@example.com", "lifecycle_stage": "lead", "owner": sales_user.pk},
        **HTMX,
    )
    assert response.status_code == 204 and "records-changed" in response["HX-Trigger"]
    contact = Contact.objects.get()
    assert (contact.email, contact.owner) == ("ada@example.com", sales_user)


def test_quick_add_shows_errors_on_the_fields(sales_client):
    make_contact(email="ada@example.com")
    dup = sales_client.post(
        "/contacts/quick-add/", {"email": "ada@example.com", "lifecycle_stage": "lead"}, **HTMX
    )
    assert dup.status_code == 422
    html = dup.content.decode()
    assert 'data-testid="error-email"' in html and "already has the email" in html
    bad = sales_client.post("/contacts/quick-add/", {"email": "nope", "lifecycle_stage": "lead"}, **HTMX)
    assert bad.status_code == 422 and "valid email" in bad.content.decode()
    assert Contact.objects.count() == 1


def test_full_create_and_edit_forms(sales_client, sales_user):
    CustomField.objects.create(entity="contact", key="seats", label="Seats", field_type="number")
    acme = make_company(name="Acme", domain="acme.com")
    page = sales_client.get("/contacts/new/")
    assert 'name="cf_seats"' in page.content.decode() and 'name="company"' in page.content.decode()
    response = sales_client.post(
        "/contacts/new/",
        {
            "first_name": "Ada",
            "company": f"Acme (#{acme.pk})",
            "lifecycle_stage": "lead",
            "tags": "a, B",
            "cf_seats": "3",
            "owner": sales_user.pk,
        },
    )
    contact = Contact.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/contacts/{contact.pk}/"
    assert (contact.company, contact.tags, contact.custom_fields) == (acme, ["a", "b"], {"seats": 3})
    # edit: a bad custom value and an unknown company are reported on their fields
    bad = sales_client.post(
        f"/contacts/{contact.pk}/edit/",
        {"first_name": "Ada", "company": "Nope Inc", "lifecycle_stage": "lead", "cf_seats": "x"},
    )
    assert bad.status_code == 422
    html = bad.content.decode()
    assert 'data-testid="error-company"' in html
    ok = sales_client.post(
        f"/contacts/{contact.pk}/edit/",
        {
            "first_name": "Ada",
            "last_name": "King",
            "company": "acme",
            "lifecycle_stage": "customer",
            "cf_seats": "",
        },
    )
    assert ok.status_code == 302
    contact.refresh_from_db()
    assert (contact.last_name, contact.lifecycle_stage, contact.custom_fields) == ("King", "customer", {})


def test_company_create_reports_a_duplicate_domain_on_the_field(sales_client):
    make_company(name="Acme", domain="acme.com")
    response = sales_client.post("/companies/new/", {"name": "Acme 2", "domain": "https://www.ACME.com/"})
    assert response.status_code == 422
    assert 'data-testid="error-domain"' in response.content.decode()
    assert "already has the domain acme.com" in response.content.decode()


def test_company_picker_options(sales_client):
    make_company(name="Acme Rockets", domain="acme.com")
    make_company(name="Globex")
    html = sales_client.get("/companies/options/?company=acm", **HTMX).content.decode()
    assert "Acme Rockets (#" in html and "Globex" not in html


def test_company_list_search_sort_and_counts(sales_client):
    acme = make_company(name="Acme", domain="acme.com")
    make_company(name="Globex", domain="globex.com")
    make_contact(email="a@acme.com")
    make_contact(email="b@acme.com")
    response = sales_client.get("/companies/?q=acme", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="company-table")
    html = response.content.decode()
    assert html.strip().startswith('<div id="company-table"')
    assert f'<td id="cell-company-{acme.pk}-contacts" data-column="contacts">2</td>' in html
    assert "Globex" not in html
    assert names_in(sales_client.get("/companies/?sort=-name")) == ["Globex", "Acme"]


def test_list_links_swap_the_table_and_push_the_url(sales_client):
    make_contact(first_name="Ada")
    html = sales_client.get("/contacts/?q=ada", **table()).content.decode()
    # sort headers keep the search, drop the cursor, swap the table and update the address bar
    assert 'href="/contacts/?q=ada&amp;sort=name" hx-get="/contacts/?q=ada&amp;sort=name"' in html
    assert html.count('hx-push-url="true"') >= 5
    # the export link carries the same filter
    assert 'href="/contacts/export.csv?q=ada"' in html


def test_company_bulk_owner_and_export_through_the_views(sales_client, sales_user):
    other = make_user(role="Sales")
    pool = make_company(name="Pool", domain="pool.example")
    theirs = make_company(name="=Theirs", owner=other)
    response = sales_client.post(
        "/companies/bulk/",
        {"ids": [pool.pk, theirs.pk], "action": "edit", "owner": sales_user.pk, "query": "sort=name"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="company-table",
    )
    assert "1 company updated. 1 skipped" in response.content.decode()
    pool.refresh_from_db()
    assert pool.owner == sales_user
    rows = list(
        csv.reader(
            io.StringIO(b"".join(sales_client.get("/companies/export.csv").streaming_content).decode())
        )
    )
    assert [r[1] for r in rows[1:]] == ["'=Theirs", "Pool"]
    assert rows[2][5] == "sales-user"


def test_company_quick_add(sales_client):
    response = sales_client.post("/companies/quick-add/", {"name": "Acme", "domain": "acme.com"}, **HTMX)
    assert response.status_code == 204
    missing = sales_client.post("/companies/quick-add/", {"name": ""}, **HTMX)
    assert missing.status_code == 422 and 'data-testid="error-name"' in missing.content.decode()


def test_field_history_names_owners_and_companies(sales_client, sales_user):
    CustomField.objects.create(entity="contact", key="seats", label="Seats", field_type="number")
    acme = make_company(name="Acme")
    contact = make_contact(first_name="Ada")
    sales_client.post(f"/contacts/{contact.pk}/cell/owner/", {"owner": sales_user.pk}, **HTMX)
    sales_client.post(f"/contacts/{contact.pk}/cell/company/", {"company": f"Acme (#{acme.pk})"}, **HTMX)
    sales_client.post(f"/contacts/{contact.pk}/cell/cf_seats/", {"cf_seats": "4"}, **HTMX)
    html = sales_client.get(f"/contacts/{contact.pk}/history/").content.decode()
    assert "Owner</span>:" in html and "→ <span>sales-user</span>" in html
    assert "Company</span>:" in html and "→ <span>Acme</span>" in html
    assert "Seats</span>:" in html and "→ <span>4</span>" in html


def test_list_links_to_import_and_duplicates_for_those_who_may_use_them(client, sales_user, marketing_user):
    # a rep sees both tools on the contact list
    client.force_login(sales_user)
    html = client.get("/contacts/").content.decode()
    assert 'href="/contacts/import/" data-testid="import-csv"' in html
    assert 'href="/contacts/duplicates/" data-testid="duplicates"' in html
    # marketing reads the list but may not import
    client.force_login(marketing_user)
    html = client.get("/contacts/").content.decode()
    assert 'data-testid="import-csv"' not in html
