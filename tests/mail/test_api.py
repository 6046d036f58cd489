"""The mail REST API over token auth: a record's email in keyset pages, one message with its
sanitised bodies and attachment downloads, sending through a real SMTP server (aiosmtpd), and
templates. Private mail stays its mailbox owner's (404 for everyone else); errors are JSON that
names the field."""

import datetime as dt
import email
import email.policy

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services as account_services
from mail.models import Direction, EmailTemplate, Mailbox, OutgoingEmail, SendStatus
from mail.services.sending import send_deliver
from tests.factories import (
    MAIL_T0,
    make_admin,
    make_attachment,
    make_company,
    make_contact,
    make_deal,
    make_link,
    make_mailbox,
    make_message,
    make_user,
)
from tests.factories.mail import make_sending_mailbox

pytestmark = pytest.mark.django_db


def token_client(user) -> APIClient:
    """A client authenticated as the API's users are: `Authorization: Token <token>`."""
    _, raw = account_services.api_token_create(user=user, name=f"{user.username}-test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
    return client


@pytest.fixture
def rep():
    return make_user(username="rita", email="rita@ourco.test", first_name="Rita", last_name="Rep")


@pytest.fixture
def api(rep):
    return token_client(rep)


@pytest.fixture
def smtp_mailbox(rep, smtp_server):
    """The rep's mailbox, sending through the real SMTP fixture."""
    return make_sending_mailbox(rep, smtp_server, email_address="rita@ourco.test")


def received(smtp_server, n: int = 0) -> email.message.EmailMessage:
    return email.message_from_bytes(smtp_server.received[n].raw, policy=email.policy.default)


# --- a record's email


def test_a_contacts_email_is_listed_newest_first_with_why_and_pages_through_every_message(
    api, rep, django_assert_max_num_queries
):
    # given a contact with five linked messages (one sent by the rep, with attachments), and
    # mail of another contact
    ada = make_contact(email="ada@acme.test", first_name="Ada")
    mailbox = make_mailbox(rep)
    messages = []
    for i in range(4):
        message = make_message(
            sender=("ada@acme.test", "Ada Lovelace"),
            to=["rita@ourco.test"],
            subject=f"Q{i}",
            text_body=f"q{i}",
        )
        make_link(message, contact=ada, via="ada@acme.test")
        messages.append(message)
    sent = make_message(
        mailbox,
        sender="rita@ourco.test",
        to=[("ada@acme.test", "Ada")],
        cc=["boss@acme.test"],
        direction=Direction.OUTGOING,
        subject="Proposal",
        text_body="The proposal is attached.",
        contacts=[ada],
    )
    make_link(sent, contact=ada, reason="sent", via="")
    make_attachment(sent, filename="quote.pdf")
    make_attachment(sent, filename="sheet.xlsx", content=b"sheet")
    make_attachment(sent, filename="logo.png", content=b"png", content_id="<logo@x>")  # inline: not counted
    messages.append(sent)
    make_link(make_message(subject="Not Ada's"), contact=make_contact(email="bob@b.test"))

    # when the rep reads the first page of two
    with django_assert_max_num_queries(8):
        first = api.get(f"/api/v1/contacts/{ada.pk}/emails/?limit=2")

    # then the newest two, the rep's send first, each with who, when and why
    assert first.status_code == 200
    body = first.json()
    assert [e["subject"] for e in body["results"]] == ["Proposal", "Q3"]
    assert body["results"][0] == {
        "id": sent.pk,
        "thread_id": sent.thread_id,
        "subject": "Proposal",
        "from": {"address": "rita@ourco.test", "name": ""},
        "to": [{"address": "ada@acme.test", "name": "Ada", "contact": ada.pk}],
        "cc": [{"address": "boss@acme.test", "name": "", "contact": None}],
        "sent_at": sent.sent_at.isoformat().replace("+00:00", "Z"),
        "direction": "outgoing",
        "snippet": "The proposal is attached.",
        "reason": "sent",
        "reason_label": "Sent from the CRM",
        "via": "",
        "attachment_count": 2,
    }
    q3 = body["results"][1]
    assert (q3["direction"], q3["reason"], q3["via"], q3["attachment_count"]) == (
        "incoming",
        "address",
        "ada@acme.test",
        0,
    )
    assert q3["from"] == {"address": "ada@acme.test", "name": "Ada Lovelace"}
    # and following `next` walks the rest once each, to a last page without one
    seen = [e["id"] for e in body["results"]]
    url = body["next"]
    while url:
        page = api.get(url).json()
        seen += [e["id"] for e in page["results"]]
        url = page["next"]
    assert seen == [m.pk for m in reversed(messages)]


def test_messages_sharing_an_instant_across_a_page_boundary_are_each_listed_once(api):
    # given seven messages on a deal sent at the same second (a bulk import of one thread)
    deal = make_deal(title="Pilot")
    same = [make_message(subject=f"S{i}", sent_at=MAIL_T0) for i in range(7)]
    for message in same:
        make_link(message, deal=deal, reason="deal")
    older = make_message(subject="Older", sent_at=MAIL_T0 - dt.timedelta(days=1))
    make_link(older, deal=deal, reason="deal")

    # when pages of three are followed to the end
    seen, url = [], f"/api/v1/deals/{deal.pk}/emails/?limit=3"
    while url:
        page = api.get(url).json()
        seen += [e["subject"] for e in page["results"]]
        url = page["next"]

    # then every message shows once, newest (then highest id) first
    assert seen == [f"S{i}" for i in reversed(range(7))] + ["Older"]


def test_a_companys_email_and_bad_list_input(api):
    acme = make_company(name="Acme", domain="acme.test")
    message = make_message(subject="Hello Acme")
    make_link(message, company=acme, reason="company", via="ada@acme.test")
    body = api.get(f"/api/v1/companies/{acme.pk}/emails/").json()
    assert [(e["subject"], e["reason_label"]) for e in body["results"]] == [
        ("Hello Acme", "A participant works at this company")
    ]
    assert body["next"] is None

    missing = api.get("/api/v1/contacts/999999/emails/")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    bad_cursor = api.get(f"/api/v1/companies/{acme.pk}/emails/?cursor=nonsense")
    assert bad_cursor.status_code == 400
    assert "cursor" in bad_cursor.json()["fields"]
    too_many = api.get(f"/api/v1/companies/{acme.pk}/emails/?limit=1000")
    assert too_many.status_code == 400 and "limit" in too_many.json()["fields"]


def test_a_merged_contacts_email_list_redirects_to_the_survivor(api):
    survivor = make_contact(email="ada@acme.test")
    merged = make_contact(email="ada.old@acme.test", merged_into=survivor)
    response = api.get(f"/api/v1/contacts/{merged.pk}/emails/?limit=5")
    assert response.status_code == 308
    assert response["Location"].endswith(f"/api/v1/contacts/{survivor.pk}/emails/?limit=5")
    assert response.json()["id"] == survivor.pk


# --- one message


def test_one_message_has_its_bodies_sanitised_its_attachments_and_its_records(api, rep):
    ada = make_contact(email="ada@acme.test")
    deal = make_deal(title="Pilot", contact=ada)
    message = make_message(
        sender="ada@acme.test",
        to=["rita@ourco.test"],
        cc=["boss@acme.test"],
        subject="Pricing",
        text_body="Hi Rita,\n\nWhat does it cost?",
        html_body='<p onclick="x()">Hi <b>Rita</b></p><script>alert(1)</script><img src="https://t.test/p.gif">',
        contacts=[ada],
        in_reply_to="<earlier@acme.test>",
    )
    make_link(message, contact=ada, via="ada@acme.test")
    make_link(message, deal=deal, reason="deal", via="ada@acme.test")
    kept = make_attachment(message, filename="brief.pdf", content=b"%PDF brief")
    make_attachment(message, filename="huge.zip", content=b"zip", skipped_reason="Over the 25 MB limit.")
    make_attachment(message, filename="logo.png", content=b"png", content_id="<logo@acme>")

    response = api.get(f"/api/v1/emails/{message.pk}/")

    assert response.status_code == 200
    body = response.json()
    assert (body["subject"], body["text_body"], body["direction"], body["in_reply_to"]) == (
        "Pricing",
        "Hi Rita,\n\nWhat does it cost?",
        "incoming",
        "<earlier@acme.test>",
    )
    assert body["from"] == {"address": "ada@acme.test", "name": ""}
    assert [r["address"] for r in body["to"]] == ["rita@ourco.test"]
    assert [r["address"] for r in body["cc"]] == ["boss@acme.test"]
    # no script, no event handler, no remote image: what a client may render as is
    assert "<b>Rita</b>" in body["html_body"]
    for unsafe in ("<script", "onclick", "src=", "t.test"):
        assert unsafe not in body["html_body"]
    # listed attachments (not the inline image), a download link only for the kept file
    assert [(a["filename"], a["size_bytes"], a["skipped_reason"]) for a in body["attachments"]] == [
        ("brief.pdf", 10, ""),
        ("huge.zip", 3, "Over the 25 MB limit."),
    ]
    assert body["attachments"][0]["download_url"] == f"http://testserver/mail/attachments/{kept.pk}/"
    assert body["attachments"][1]["download_url"] is None
    assert [(link["contact"], link["deal"], link["reason"]) for link in body["links"]] == [
        (ada.pk, None, "address"),
        (None, deal.pk, "deal"),
    ]


def test_private_mail_is_its_owners_alone_and_linked_mail_every_crm_readers(rep):
    # given the rep's private message (linked to nothing) and a message on a contact
    mailbox = make_mailbox(rep)
    private = make_message(mailbox, subject="Private: salary", text_body="just us")
    ada = make_contact(email="ada@acme.test")
    linked = make_message(sender="ada@acme.test", subject="Linked")
    make_link(linked, contact=ada)
    colleague, admin = make_user(username="sam"), make_admin(username="boss")
    marketing = make_user(role="Marketing", username="mia")
    nobody = make_user(username="norole")
    nobody.groups.clear()

    # then the owner opens their private message; a colleague and an Admin get the 404 of a
    # message that does not exist
    assert token_client(rep).get(f"/api/v1/emails/{private.pk}/").json()["text_body"] == "just us"
    for user in (colleague, admin, marketing):
        response = token_client(user).get(f"/api/v1/emails/{private.pk}/")
        assert response.status_code == 404, user
        assert "salary" not in response.content.decode()
    assert token_client(colleague).get("/api/v1/emails/999999/").json()["code"] == "not_found"
    # and Marketing reads the CRM's email as the timeline shows it (list and message)
    marketer = token_client(marketing)
    assert [e["subject"] for e in marketer.get(f"/api/v1/contacts/{ada.pk}/emails/").json()["results"]] == [
        "Linked"
    ]
    assert marketer.get(f"/api/v1/emails/{linked.pk}/").json()["subject"] == "Linked"
    # and a user in no role reads no record's email (403) nor linked mail (404)
    assert token_client(nobody).get(f"/api/v1/contacts/{ada.pk}/emails/").status_code == 403
    assert token_client(nobody).get(f"/api/v1/emails/{linked.pk}/").status_code == 404
    # and anonymous callers get 401
    assert APIClient().get(f"/api/v1/emails/{linked.pk}/").status_code == 401


# --- sending


def test_a_send_through_the_api_arrives_over_smtp_and_answers_the_send(api, rep, smtp_mailbox, smtp_server):
    # given a contact with a deal
    ada = make_contact(email="ada@acme.test", first_name="Ada")
    deal = make_deal(title="Pilot", contact=ada)

    # when the rep sends from the deal (no mailbox named: their one)
    response = api.post(
        "/api/v1/emails/send/",
        {
            "to": ["Ada Lovelace <ada@acme.test>"],
            "cc": ["boss@acme.test"],
            "subject": "Proposal",
            "body_html": '<p>Hi Ada, the <a href="https://acme.example/p">proposal</a>.</p><script>x</script>',
            "contact": ada.pk,
            "deal": deal.pk,
        },
        format="json",
    )

    # then the send is written, scheduled now, with its Message-ID
    assert response.status_code == 201, response.json()
    body = response.json()
    send = OutgoingEmail.objects.get()
    assert body["id"] == send.pk and body["status"] == "scheduled"
    assert body["message_id"] == send.header_message_id and body["message_id"].endswith("@ourco.test>")
    assert (body["mailbox"], body["contact"], body["deal"], body["to"], body["cc"]) == (
        smtp_mailbox.pk,
        ada.pk,
        deal.pk,
        ["Ada Lovelace <ada@acme.test>"],
        ["boss@acme.test"],
    )
    assert "<script" not in body["body_html"]
    # and delivering it puts that message on the SMTP server
    assert send_deliver(send_id=send.pk).status == SendStatus.SENT
    raw = received(smtp_server)
    assert raw["Message-ID"] == body["message_id"] and raw["Subject"] == "Proposal"
    assert raw["To"] == "Ada Lovelace <ada@acme.test>" and raw["Cc"] == "boss@acme.test"


def test_a_template_is_filled_for_the_contact_and_deal_and_a_reply_threads(
    api, rep, smtp_mailbox, smtp_server
):
    ada = make_contact(email="ada@acme.test", first_name="Ada")
    deal = make_deal(title="Pilot", contact=ada)
    template = EmailTemplate.objects.create(
        owner=rep,
        name="Follow-up",
        subject="{{ deal.name }} for {{ contact.first_name }}",
        body="<p>Hi {{ contact.first_name }}, {{ sender.first_name }} here.</p>",
    )
    parent = make_message(
        make_mailbox(rep, email_address="rita.other@ourco.test"),
        sender="ada@acme.test",
        subject="Question",
        header_message_id="<q1@acme.test>",
        message_key="q1@acme.test",
    )

    response = api.post(
        "/api/v1/emails/send/",
        {
            "mailbox": smtp_mailbox.pk,
            "to": ["ada@acme.test"],
            "template": template.pk,
            "contact": ada.pk,
            "deal": deal.pk,
            "reply_to": parent.pk,
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["subject"] == "Pilot for Ada" and body["template"] == template.pk
    assert body["body_html"] == "<p>Hi Ada, Rita here.</p>" and body["body_text"] == "Hi Ada, Rita here."
    assert body["reply_to"] == parent.pk
    assert send_deliver(send_id=body["id"]).status == SendStatus.SENT
    raw = received(smtp_server)
    assert raw["Subject"] == "Pilot for Ada" and raw["In-Reply-To"] == "<q1@acme.test>"


def test_a_template_field_with_no_value_is_a_400_listing_the_fields(api, rep, smtp_mailbox):
    nameless = make_contact(email="x@acme.test", first_name="")
    template = EmailTemplate.objects.create(
        owner=rep, name="Hi", subject="Hello {{ contact.first_name }}", body="<p>{{ contact.last_name }}</p>"
    )
    response = api.post(
        "/api/v1/emails/send/",
        {"to": ["x@acme.test"], "template": template.pk, "contact": nameless.pk},
        format="json",
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "merge_field_missing"
    assert body["missing"] == ["contact.first_name", "contact.last_name"]
    assert "contact.first_name" in body["fields"]["template"]
    assert not OutgoingEmail.objects.exists()


def test_bad_sends_are_400s_naming_the_field_and_write_nothing(api, rep, smtp_mailbox):
    other_rep = make_user(username="sam")
    theirs = make_mailbox(other_rep, smtp_host="127.0.0.1")
    their_private = make_message(make_mailbox(other_rep, email_address="sam2@ourco.test"), subject="Theirs")
    their_template = EmailTemplate.objects.create(owner=other_rep, name="T", subject="S", body="<p>B</p>")
    good = {"to": ["ada@acme.test"], "subject": "Hi", "body_text": "Hello"}
    cases = [
        ({"mailbox": theirs.pk}, "mailbox"),
        ({"mailbox": 999999}, "mailbox"),
        ({"to": ["not an address"]}, "to"),
        ({"to": []}, "to"),
        ({"subject": ""}, "subject"),
        ({"contact": 999999}, "contact"),
        ({"deal": 999999}, "deal"),
        ({"template": their_template.pk}, "template"),
        ({"reply_to": their_private.pk}, "reply_to"),
        ({"cc": "boss@acme.test"}, "cc"),
        ({"send_at": "tomorrow"}, "send_at"),
    ]
    for change, field in cases:
        response = api.post("/api/v1/emails/send/", good | change, format="json")
        assert response.status_code == 400, (change, response.content)
        assert field in response.json()["fields"], (change, response.json())
    assert not OutgoingEmail.objects.exists()


def test_the_daily_cap_is_a_400_saying_so(api, rep, smtp_mailbox):
    Mailbox.objects.filter(pk=smtp_mailbox.pk).update(daily_send_cap=1)
    good = {"to": ["ada@acme.test"], "subject": "Hi", "body_text": "Hello"}
    assert api.post("/api/v1/emails/send/", good, format="json").status_code == 201
    response = api.post("/api/v1/emails/send/", good, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "send_cap_reached" and "send_at" in body["fields"]
    assert "limit of 1 emails" in body["detail"]
    # a send scheduled beyond the window is accepted
    later = (timezone.now() + dt.timedelta(days=2)).isoformat()
    scheduled = api.post("/api/v1/emails/send/", good | {"send_at": later}, format="json")
    assert scheduled.status_code == 201 and scheduled.json()["status"] == "scheduled"
    assert OutgoingEmail.objects.count() == 2


def test_without_a_mailbox_of_your_own_sending_is_refused_before_the_body_is_read(rep):
    make_mailbox(make_user(username="sam"), smtp_host="127.0.0.1")
    for body in (
        {},
        {"to": "x", "mailbox": "y"},
        {"to": ["ada@acme.test"], "subject": "Hi", "body_text": "x"},
    ):
        response = token_client(rep).post("/api/v1/emails/send/", body, format="json")
        assert response.status_code == 403
        assert response.json()["code"] == "no_mailbox"
    assert not OutgoingEmail.objects.exists()


# --- templates


def test_templates_crud_with_the_owner_shared_and_admin_rules(api, rep):
    colleague, admin = make_user(username="sam"), make_admin(username="boss")
    theirs = EmailTemplate.objects.create(owner=colleague, name="Sam's own", subject="S", body="<p>B</p>")

    # the rep creates a shared template (stored as written: it is sanitised when rendered)
    created = api.post(
        "/api/v1/email-templates/",
        {
            "name": "Intro",
            "subject": "Hi {{ contact.first_name }}",
            "body": "<p>Hi</p><script>x</script>",
            "shared": True,
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["name"], body["subject"], body["body"], body["shared"], body["owner"]) == (
        "Intro",
        "Hi {{ contact.first_name }}",
        "<p>Hi</p><script>x</script>",
        True,
        rep.pk,
    )
    pk = body["id"]
    # the rep lists theirs and the shared ones, never a colleague's personal one
    assert [t["name"] for t in api.get("/api/v1/email-templates/").json()["results"]] == ["Intro"]
    assert api.get(f"/api/v1/email-templates/{theirs.pk}/").status_code == 404
    # a colleague reads the shared template but may not change it; an Admin may
    sam = token_client(colleague)
    assert sam.get(f"/api/v1/email-templates/{pk}/").json()["name"] == "Intro"
    refused = sam.patch(f"/api/v1/email-templates/{pk}/", {"name": "Mine now"}, format="json")
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    assert sam.delete(f"/api/v1/email-templates/{pk}/").status_code == 403
    edited = token_client(admin).patch(f"/api/v1/email-templates/{pk}/", {"subject": "Hello"}, format="json")
    assert edited.status_code == 200 and (edited.json()["name"], edited.json()["subject"]) == (
        "Intro",
        "Hello",
    )
    # bad input is a 400 naming the field
    unknown = api.patch(
        f"/api/v1/email-templates/{pk}/", {"body": "<p>{{ contact.password }}</p>"}, format="json"
    )
    assert unknown.status_code == 400 and "contact.password" in unknown.json()["fields"]["body"]
    empty = api.post("/api/v1/email-templates/", {}, format="json")
    assert empty.status_code == 400 and set(empty.json()["fields"]) == {"name", "subject", "body"}
    # the owner deletes it
    assert api.delete(f"/api/v1/email-templates/{pk}/").status_code == 204
    assert list(EmailTemplate.objects.values_list("name", flat=True)) == ["Sam's own"]


# --- schema


def test_the_schema_documents_the_mail_api(api):
    schema = api.get("/api/schema/?format=json").json()
    for path in (
        "/api/v1/contacts/{id}/emails/",
        "/api/v1/companies/{id}/emails/",
        "/api/v1/deals/{id}/emails/",
        "/api/v1/emails/{id}/",
        "/api/v1/emails/send/",
        "/api/v1/email-templates/",
        "/api/v1/email-templates/{id}/",
    ):
        assert path in schema["paths"], path
    assert set(schema["paths"]["/api/v1/email-templates/{id}/"]) >= {"get", "patch", "delete"}
    send = schema["paths"]["/api/v1/emails/send/"]["post"]
    assert "201" in send["responses"] and "400" in send["responses"]
    components = schema["components"]["schemas"]
    assert "from" in components["RecordEmail"]["properties"]
    assert {"download_url", "filename"} <= set(components["EmailAttachment"]["properties"])
    assert {"id", "status", "send_at", "message_id"} <= set(components["OutgoingEmail"]["properties"])
