"""Email on the contact, company and deal timelines, the thread view and attachment downloads: what
shows, why it is there, who may open it (private mail is its owner's; another user gets 404)."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from identity import selectors as identity_selectors
from mail.models import Direction, EmailLink, LinkReason
from mail.selectors import messages as mail_selectors
from mail.services.matching import messages_link
from mail.services.triage import unmatched_link_contact
from pipeline.services import activities
from tests.factories import make_admin, make_company, make_contact, make_deal, make_user
from tests.factories.mail import make_attachment, make_link, make_mailbox, make_message, make_thread

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
AT = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
XSS = '<script>alert("x")</script>'


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(tmp_path)},
    }
    settings.STORAGES = {**settings.STORAGES, "default": storage}


@pytest.fixture
def rep(client):
    user = make_user(username="rita", email="rita@ourco.test")
    client.force_login(user)
    return user


@pytest.fixture
def acme():
    return make_company(name="Acme", domain="acme.test")


@pytest.fixture
def ada(acme):
    return make_contact(first_name="Ada", email="ada@acme.test", company=acme)


def _on_every_record(message, *, contact, company, deal, address):
    make_link(message, contact=contact, reason=LinkReason.ADDRESS, via=address)
    make_link(message, company=company, reason=LinkReason.COMPANY, via=address)
    make_link(message, deal=deal, reason=LinkReason.DEAL, via=address)


def test_email_is_on_the_contact_company_and_deal_timelines_with_why(client, rep, acme, ada):
    # given a message the rep sent to Ada, with an attachment, on Ada, Acme and Ada's deal
    deal = make_deal(title="Acme pilot", contact=ada)
    mailbox = make_mailbox(rep)
    message = make_message(
        mailbox,
        sender=(rep.email, "Rita Rep"),
        to=[("ada@acme.test", "Ada Lovelace")],
        direction=Direction.OUTGOING,
        subject="Pilot proposal",
        text_body="Here is the proposal we discussed.",
        contacts=[ada],
    )
    make_attachment(message, filename="proposal.pdf")
    make_attachment(message, filename="logo.png", content=b"png", content_id="<logo>")  # inline: not counted
    _on_every_record(message, contact=ada, company=acme, deal=deal, address="ada@acme.test")
    thread_url = reverse("mail:thread", args=[message.thread_id])

    contact_html = client.get(f"/contacts/{ada.pk}/timeline/", **HTMX).content.decode()
    company_html = client.get(f"/companies/{acme.pk}/activities/", **HTMX).content.decode()
    deal_html = client.get(f"/deals/{deal.pk}/activities/", **HTMX).content.decode()

    for html, why in (
        (contact_html, "Matched by email address: ada@acme.test"),
        (company_html, "A participant works at this company: ada@acme.test"),
        (deal_html, "Open deal of a participant: ada@acme.test"),
    ):
        assert html.count('data-testid="timeline-email"') == 1
        assert why in html
        assert "Pilot proposal" in html and "Here is the proposal we discussed." in html
        assert "Rita Rep &lt;rita@ourco.test&gt;" in html and "Ada Lovelace &lt;ada@acme.test&gt;" in html
        assert (
            '<span class="badge text-bg-light border fw-normal" data-testid="email-direction">Sent</span>'
            in html
        )
        assert "1 attachment<" in html.replace("\n", "")
        assert f'href="{thread_url}#message-{message.pk}"' in html


def test_received_mail_reads_received_and_other_records_do_not_show_it(client, rep, ada):
    bob = make_contact(first_name="Bob", email="bob@elsewhere.test")
    message = make_message(make_mailbox(rep), sender="ada@acme.test", to=[rep.email], subject="Question")
    make_link(message, contact=ada, via="ada@acme.test")
    html = client.get(f"/contacts/{ada.pk}/timeline/", **HTMX).content.decode()
    assert 'data-testid="email-direction">Received<' in html
    assert "timeline-email" not in client.get(f"/contacts/{bob.pk}/timeline/", **HTMX).content.decode()


def test_paging_across_email_and_activities_is_exact(rep, ada):
    # given notes and emails interleaved, some at the very same instant
    expected = set()
    mailbox = make_mailbox(rep)
    for i in range(9):
        at = AT + dt.timedelta(minutes=10 * (i // 2))  # pairs share a minute
        note = activities.activity_log(actor=rep, kind="note", body=f"n{i}", contact=ada, occurred_at=at)
        expected.add(("activity", note.pk))
        message = make_message(mailbox, sender="ada@acme.test", sent_at=at, subject=f"m{i}")
        make_link(message, contact=ada, via="ada@acme.test")
        expected.add(("email", message.pk))
    # (each source reads size+1 rows at or before the cursor's instant, so more than `size` of one
    # source at one instant is the limit of the scheme, for every source alike: two here)
    for size in (2, 3, 5, 7):
        seen, keys, cursor = [], [], None
        for _ in range(40):
            page = identity_selectors.contact_timeline(user=rep, contact=ada, cursor=cursor, size=size)
            seen += [(item.kind, item.key) for item in page.items]
            keys += [item.sort_key for item in page.items]
            if not (cursor := page.next_cursor):
                break
        # every item once (no duplicate, no gap), newest first across pages
        assert len(seen) == len(set(seen)) and set(seen) == expected, size
        assert keys == sorted(keys, reverse=True)


def test_a_full_page_of_email_alone_still_offers_older(rep, ada):
    mailbox = make_mailbox(rep)
    for i in range(4):
        make_link(make_message(mailbox, sent_at=AT + dt.timedelta(hours=i)), contact=ada, via="ada@acme.test")
    first = identity_selectors.contact_timeline(user=rep, contact=ada, size=3)
    assert [item.kind for item in first.items] == ["email"] * 3 and first.next_cursor
    second = identity_selectors.contact_timeline(user=rep, contact=ada, cursor=first.next_cursor, size=3)
    assert len(second.items) == 1 and second.next_cursor is None


def test_record_messages_costs_two_queries_whatever_the_history(rep, ada, django_assert_num_queries):
    mailbox = make_mailbox(rep)
    for i in range(30):
        message = make_message(mailbox, sender="ada@acme.test", to=[rep.email], cc=["x@y.test"])
        make_attachment(message, content=f"file {i}".encode())
        make_link(message, contact=ada, via="ada@acme.test")
    # the user's roles, the links with their messages, then the participants
    with django_assert_num_queries(3):
        rows = mail_selectors.record_messages(user=rep, contact=ada, limit=10)
        assert [len(r.to) + len(r.cc) for r in rows] == [2] * 10 and rows[0].attachment_count == 1
    assert [r.at for r in rows] == sorted((r.at for r in rows), reverse=True)
    older = mail_selectors.record_messages(user=rep, contact=ada, until=rows[-1].at, limit=50)
    assert older[0].key == rows[-1].key and len(older) == 21


def _bulk_mail(mailbox, contact, *, count, start=AT, step=dt.timedelta(minutes=1)):
    """`count` messages on `contact`, two at each instant (ties broken by message id)."""
    return [
        make_link(
            make_message(
                mailbox, sender="ada@acme.test", to=[mailbox.email_address], sent_at=start + step * (i // 2)
            ),
            contact=contact,
            via="ada@acme.test",
        ).message
        for i in range(count)
    ]


def test_a_record_with_many_emails_pages_exactly(rep, ada):
    # given 130 emails on Ada (pairs at one instant) and notes among them
    mailbox = make_mailbox(rep)
    messages = _bulk_mail(mailbox, ada, count=130)
    expected = {("email", m.pk) for m in messages}
    for i in range(0, 65, 7):
        note = activities.activity_log(
            actor=rep, kind="note", body=f"n{i}", contact=ada, occurred_at=AT + dt.timedelta(minutes=i)
        )
        expected.add(("activity", note.pk))
    # when the contact timeline is walked page by page
    seen, keys, cursor = [], [], None
    for _ in range(20):
        page = identity_selectors.contact_timeline(user=rep, contact=ada, cursor=cursor, size=20)
        seen += [(item.kind, item.key) for item in page.items]
        keys += [item.sort_key for item in page.items]
        if not (cursor := page.next_cursor):
            break
    # then every item shows once, newest first
    assert len(seen) == len(set(seen)) and set(seen) == expected
    assert keys == sorted(keys, reverse=True)
    # and the selector's own (sent_at, message) cursor walks the links in the same order
    walked, before = [], None
    while rows := mail_selectors.record_messages(user=rep, contact=ada, before=before, limit=17):
        walked += [r.key for r in rows]
        before = (rows[-1].at, rows[-1].key)
    assert walked == [key for kind, key in seen if kind == "email"]


def _email_plan(captured) -> dict:
    """EXPLAIN ANALYZE of the one query that read the record's links."""
    (sql,) = [q["sql"] for q in captured if 'FROM "mail_emaillink"' in q["sql"]]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql)
        return cursor.fetchone()[0][0]["Plan"]


def _nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


@pytest.mark.parametrize("count", [4, 150])
def test_a_timeline_page_costs_the_same_whatever_the_mail(
    client, rep, ada, count, django_assert_max_num_queries
):
    # given Ada with `count` emails (and her company and deal with them too)
    mailbox = make_mailbox(rep)
    deal = make_deal(title="Acme pilot", contact=ada)
    for message in _bulk_mail(mailbox, ada, count=count):
        make_link(message, company=ada.company, via="ada@acme.test")
        make_link(message, deal=deal, via="ada@acme.test")
    url = reverse("identity:timeline", args=[ada.pk])
    # when the first page and a page deep in her history are read
    first = identity_selectors.contact_timeline(user=rep, contact=ada, size=3)
    deep = identity_selectors.contact_timeline(user=rep, contact=ada, cursor=first.next_cursor, size=3)
    for _ in range(count // 6):
        deep = identity_selectors.contact_timeline(user=rep, contact=ada, cursor=deep.next_cursor, size=3)
    for cursor in (None, deep.next_cursor):
        # then the fragment's queries are the same number at 4 emails as at 150
        with django_assert_max_num_queries(13), CaptureQueriesContext(connection) as captured:
            response = client.get(url, {"cursor": cursor} if cursor else {}, **HTMX)
        assert response.status_code == 200
        # and the email query is one index scan stopped after a page (21 rows) with no sort
        plan = _email_plan(captured.captured_queries)
        scans = [n for n in _nodes(plan) if n.get("Relation Name") == "mail_emaillink"]
        assert [n["Index Name"] for n in scans] == ["email_link_contact_timeline"], plan
        assert scans[0]["Actual Rows"] <= 21 and plan["Node Type"] == "Limit"
        assert not [n for n in _nodes(plan) if "Sort" in n["Node Type"]]
    # and the company and deal feeds read theirs the same way
    for record, index in ((ada.company, "email_link_company_timeline"), (deal, "email_link_deal_timeline")):
        field = "company" if record is ada.company else "deal"
        with CaptureQueriesContext(connection) as captured:
            rows = mail_selectors.record_messages(
                user=rep, **{field: record}, until=deep.items[-1].at, limit=21
            )
        assert rows and [r.at for r in rows] == sorted((r.at for r in rows), reverse=True)
        plan = _email_plan(captured.captured_queries)
        scans = [n for n in _nodes(plan) if n.get("Relation Name") == "mail_emaillink"]
        assert [n["Index Name"] for n in scans] == [index] and scans[0]["Actual Rows"] <= 21


def test_every_link_carries_its_messages_time(rep, ada):
    # given a message matched by address (contact, company) and one linked by hand
    mailbox = make_mailbox(rep)
    matched = make_message(mailbox, sender="ada@acme.test", to=[rep.email], sent_at=AT)
    by_hand = make_message(
        mailbox, sender="nobody@else.test", to=[rep.email], sent_at=AT - dt.timedelta(days=3)
    )
    messages_link(mailbox=mailbox, messages=[matched])
    unmatched_link_contact(copy_id=by_hand.copies.get().pk, contact=ada, actor=rep)
    # then each link's sent_at is its message's
    links = EmailLink.objects.filter(message__in=[matched, by_hand]).select_related("message")
    assert {(link.message_id, link.sent_at) for link in links} == {
        (matched.pk, AT),
        (by_hand.pk, by_hand.sent_at),
    }
    assert links.count() == 4  # Ada and Acme for each


# --- who may open a message


@pytest.fixture
def private(rep):
    """A message in the rep's mailbox linked to nothing, with an attachment."""
    message = make_message(make_mailbox(rep), sender="stranger@elsewhere.test", subject="Private matter")
    return message, make_attachment(message, filename="secret.pdf", content=b"%PDF secret")


def test_private_mail_is_its_owners_only(client, rep, private):
    message, attachment = private
    thread_url = reverse("mail:thread", args=[message.thread_id])
    attachment_url = reverse("mail:attachment", args=[attachment.pk])
    # the owner opens both
    assert "Private matter" in client.get(thread_url).content.decode()
    assert client.get(attachment_url).status_code == 200
    # another rep, and an Admin, get 404 (not 403: the message's existence does not leak)
    for other in (make_user(username="olga"), make_admin(username="boss")):
        client.force_login(other)
        assert client.get(thread_url).status_code == 404
        assert client.get(attachment_url).status_code == 404


def test_linked_mail_is_visible_to_every_crm_reader(client, rep, ada):
    message = make_message(make_mailbox(rep), sender="ada@acme.test", subject="On the record")
    attachment = make_attachment(message)
    make_link(message, contact=ada, via="ada@acme.test")
    for user in (make_user(username="olga"), make_user(role="Marketing", username="mo")):
        client.force_login(user)
        assert (
            "On the record" in client.get(reverse("mail:thread", args=[message.thread_id])).content.decode()
        )
        assert client.get(reverse("mail:attachment", args=[attachment.pk])).status_code == 200
    # a user in no role reads no CRM record, so no linked mail either
    nobody = make_user(username="nobody")
    nobody.groups.clear()
    client.force_login(nobody)
    assert client.get(reverse("mail:thread", args=[message.thread_id])).status_code == 404


def test_a_thread_shows_only_the_messages_the_user_may_open_oldest_first(client, rep, ada):
    thread = make_thread(subject="Renewal")
    olga = make_user(username="olga")
    mailbox = make_mailbox(rep)
    first = make_message(mailbox, thread=thread, sent_at=AT, subject="Renewal", text_body="first")
    make_link(first, contact=ada, via="ada@acme.test")
    make_message(make_mailbox(olga), thread=thread, sent_at=AT + dt.timedelta(hours=1), text_body="olga only")
    last = make_message(
        mailbox,
        thread=thread,
        sent_at=AT + dt.timedelta(hours=2),
        subject="Re: Renewal",
        text_body="last",
    )
    make_link(last, contact=ada, via="ada@acme.test")
    html = client.get(reverse("mail:thread", args=[thread.pk])).content.decode()
    assert html.count('data-testid="thread-message"') == 2
    assert html.index(f'id="message-{first.pk}"') < html.index(f'id="message-{last.pk}"')
    assert "olga only" not in html
    assert "Matched by email address: ada@acme.test" in html  # why each message is on its records
    client.force_login(olga)
    assert client.get(reverse("mail:thread", args=[thread.pk])).content.decode().count("thread-message") == 3


def test_unknown_thread_and_attachment_are_404(client, rep):
    assert client.get(reverse("mail:thread", args=[999999])).status_code == 404
    assert client.get(reverse("mail:attachment", args=[999999])).status_code == 404


# --- what is shown, and how safely


def test_subject_body_and_filename_are_escaped_everywhere(client, rep, ada):
    message = make_message(
        make_mailbox(rep),
        sender=("ada@acme.test", XSS),
        subject=f"Hi {XSS}",
        text_body=f"Body {XSS}",
    )
    make_attachment(message, filename=f"{XSS}.pdf")
    make_link(message, contact=ada, via=XSS)
    timeline = client.get(f"/contacts/{ada.pk}/timeline/", **HTMX).content.decode()
    thread = client.get(reverse("mail:thread", args=[message.thread_id])).content.decode()
    for html in (timeline, thread):
        assert "<script>alert" not in html
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html


def test_an_html_body_is_shown_sanitised(client, rep, ada):
    # stored as written by some path that forgot to sanitise: the view sanitises again
    message = make_message(
        make_mailbox(rep),
        html_body='<p onclick="x()">Hello <b>there</b></p><script>alert(1)</script>'
        '<img src="https://tracker.test/open.gif" alt="logo">',
    )
    make_link(message, contact=ada)
    html = client.get(reverse("mail:thread", args=[message.thread_id])).content.decode()
    assert "<p>Hello <b>there</b></p>" in html
    assert "alert(1)" not in html and "onclick" not in html
    assert "tracker.test" not in html  # a remote image is a read receipt: not loaded


def test_quoted_text_and_signature_are_folded(client, rep, ada):
    body = (
        "Tuesday works for us.\n\n"
        "Best regards,\nAda\n\n"
        "On Mon, Nov 2, 2026 at 9:00 AM Rita <rita@ourco.test> wrote:\n"
        "> Could we meet next week?\n"
    )
    message = make_message(make_mailbox(rep), sender="ada@acme.test", text_body=body)
    make_link(message, contact=ada)
    html = client.get(reverse("mail:thread", args=[message.thread_id])).content.decode()
    shown, folded = html.split('data-testid="quoted"')
    assert "Tuesday works for us." in shown and "Could we meet" not in shown and "Best regards" not in shown
    assert (
        "Show quoted text" in folded
        and "&gt; Could we meet next week?" in folded
        and "Best regards" in folded
    )


def test_a_body_without_quotes_has_nothing_to_fold(client, rep, ada):
    message = make_message(make_mailbox(rep), text_body="Just this.")
    make_link(message, contact=ada)
    html = client.get(reverse("mail:thread", args=[message.thread_id])).content.decode()
    assert "Just this." in html and 'data-testid="quoted"' not in html


def test_attachment_download_returns_the_bytes_under_the_original_name(client, rep, private):
    _, attachment = private
    response = client.get(reverse("mail:attachment", args=[attachment.pk]))
    assert b"".join(response.streaming_content) == b"%PDF secret"
    assert response["Content-Disposition"] == 'attachment; filename="secret.pdf"'
    assert response["Content-Type"] == "application/pdf"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_an_odd_filename_is_encoded_safely(client, rep, private):
    message, _ = private
    odd = make_attachment(
        message,
        filename='../Angebot "final"\r\nX-Evil: 1 Grüße.pdf',
        content=b"odd",
        content_type="text/html\r\nX: y",
    )
    response = client.get(reverse("mail:attachment", args=[odd.pk]))
    disposition = response["Content-Disposition"]
    assert response.status_code == 200 and "\n" not in disposition and "/" not in disposition.split("''")[0]
    assert disposition.startswith("attachment; filename*=utf-8''") and "Gr%C3%BC%C3%9Fe.pdf" in disposition
    assert response["Content-Type"] == "application/octet-stream"  # not the sender's odd type


def test_a_skipped_attachment_shows_why_and_no_link(client, rep, private):
    message, _ = private
    skipped = make_attachment(
        message, filename="huge.zip", content=b"z" * 10, skipped_reason="over the 25 MB cap"
    )
    html = client.get(reverse("mail:thread", args=[message.thread_id])).content.decode()
    assert "huge.zip" in html and "(not kept: over the 25 MB cap)" in html
    assert reverse("mail:attachment", args=[skipped.pk]) not in html
    assert html.count('data-testid="attachment-link"') == 1  # secret.pdf only
    assert client.get(reverse("mail:attachment", args=[skipped.pk])).status_code == 404


def test_mail_whose_sender_failed_the_servers_checks_says_so_on_the_timeline_and_thread(client, rep, ada):
    forged = make_message(sender="ada@acme.test", subject="Urgent wire", auth_failure="dmarc=fail")
    make_link(forged, contact=ada, via="ada@acme.test")
    honest = make_message(sender="ada@acme.test", subject="Lunch?")
    make_link(honest, contact=ada, via="ada@acme.test")
    timeline = client.get(reverse("identity:timeline", args=[ada.pk])).content.decode()
    assert timeline.count('data-testid="email-unverified"') == 1
    before_badge = timeline.split('data-testid="email-unverified"')[0]
    assert before_badge.rfind("Urgent wire") > before_badge.rfind("Lunch?")  # the badge is Urgent wire's
    thread = client.get(reverse("mail:thread", args=[forged.thread_id])).content.decode()
    assert "Sender not verified: the From may be forged" in thread


def test_a_merge_brings_the_losers_email_to_the_survivors_timeline(client, rep, ada):
    from contacts.services import merging as contact_merging

    twin = make_contact(first_name="Ada", email="ada.old@acme.test")
    message = make_message(sender="ada.old@acme.test", subject="From the old address", contacts=[twin])
    make_link(message, contact=twin, via="ada.old@acme.test")
    contact_merging.contact_merge(winner=ada, loser=twin, field_choices={}, actor=None)
    assert "From the old address" in client.get(reverse("identity:timeline", args=[ada.pk])).content.decode()
    assert EmailLink.objects.get(message=message).contact_id == ada.pk


def test_the_thread_page_does_not_show_its_messages_as_notifications(client, rep, ada):
    # the page's messages are its own context name: base.html lists Django's `messages` as alerts
    message = make_message(sender="ada@acme.test", subject="Quarterly numbers")
    make_link(message, contact=ada, via="ada@acme.test")
    page = client.get(reverse("mail:thread", args=[message.thread_id])).content.decode()
    assert page.count("Quarterly numbers") == 2  # the title and the heading, no alert
    assert 'role="alert"' not in page and "alert-info" not in page
