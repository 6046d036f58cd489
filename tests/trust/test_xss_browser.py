"""Stored XSS, in a real browser: CRM records, tracked events and import errors whose every
user-controlled string is an XSS payload, rendered on each page that shows them. No payload may run
(`window.__xss` stays undefined), none may become markup (no injected element, handler attribute or
`javascript:` link), and each page shows the payload as text.

The browser context bypasses the Content-Security-Policy on purpose: the policy would block an
injected script anyway, and this test is about the layer beneath it (escaping), which must hold on
its own. (The other browser tests keep the policy on and fail on any violation.)

To cover a new page, add one line to PAGES. The identity, segment and privacy pages read rows the
stitching worker and the segment engine write (web events, identifiers, warnings, merges,
memberships): those are seeded directly with payloads in every string a visitor or a user controls.
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from accounts.models import Notification
from contacts import services as contact_services
from contacts.models import Company, Contact, ContactMerge, ImportJob, ImportRowError
from contacts.services import merging as contact_merging
from events import services as event_services
from events.ingest.parse import normalise
from events.models import RejectedEvent, Source
from identity.models import BlockedValue, HotRule, IdentityWarning, WarningKind
from pipeline import services as pipeline_services
from pipeline.models import Pipeline, Stage
from pipeline.services import activities
from privacy.models import ErasureRequest, ErasureStatus
from segments.models import Membership, MembershipChange, Segment, SegmentKind, Webhook
from tests.factories import PASSWORD, link_identity, make_admin, stored_contact_event

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

IMG = "<img src=x onerror=window.__xss=1>"
SCRIPT = '"><script>window.__xss=1</script>'
SVG = "'><svg onload=window.__xss=1>"
JS_URL = "javascript:window.__xss=1"
TEMPLATE = "{{ 7|add:7 }}{% now 'Y' %}"  # must show verbatim, never be evaluated as a template
PAYLOADS = (IMG, SCRIPT, SVG, JS_URL)


@dataclass
class Hostile:
    contact: Contact
    company: Company
    deal_id: int
    import_job: ImportJob
    merge_id: int
    static_segment_id: int
    dynamic_segment_id: int
    erasure_id: int
    mail_thread_id: int
    mail_message_id: int
    mailbox_id: int


def make_hostile_world() -> Hostile:
    admin = make_admin(username="xss-admin")
    contact_services.custom_field_create(actor=None, entity="contact", label="Bio", field_type="text")
    company = contact_services.company_create(
        actor=None, name=f"Co {IMG}", domain="xss.test", industry=SCRIPT, owner=admin
    )
    contact = contact_services.contact_create(
        actor=None,
        first_name=IMG,
        last_name=SCRIPT,
        title="CTO",
        email="victim@xss.test",
        company=company,
        tags=[IMG, "vip"],
        custom_fields={"bio": f"{SCRIPT} {TEMPLATE}"},
        owner=admin,
    )
    contact = contact_services.contact_update(contact=contact, actor=admin, title=SVG)  # into the history
    contact_services.contact_create(  # a likely duplicate: same name at the same company
        actor=None, first_name=IMG, last_name=SCRIPT, email="victim2@xss.test", company=company
    )
    # traits and first-touch attribution come from tracked (untrusted) events via the identity worker
    Contact.objects.filter(pk=contact.pk).update(
        traits={"plan": IMG, SCRIPT: "key", "website": JS_URL},
        attribution={"utm_source": IMG, "referrer": JS_URL, "landing_page": SCRIPT},
        first_seen=timezone.now(),
    )
    pipeline = Pipeline.objects.create(name=f"P {SVG}")
    stage = Stage.objects.create(pipeline=pipeline, name=f"Stage {IMG}", probability=10)
    deal = pipeline_services.deal_create(
        actor=admin, title=f"Deal {SCRIPT}", stage=stage, contact=contact, owner=admin
    )
    activities.activity_log(
        actor=admin, kind="note", subject=IMG, body=f"{SCRIPT}\n{JS_URL}", contact=contact
    )
    activities.activity_log(actor=admin, kind="call", subject=SVG, body=IMG, deal=deal)
    activities.task_create(
        actor=admin, title=f"Task {IMG}", due_at=timezone.now() + timedelta(hours=1), contact=contact
    )
    # tracked events: names, properties, context
    source = Source.objects.create(name=f"Site {SVG}")
    now = datetime.now(UTC)
    messages = [
        normalise(
            {
                "type": "track",
                "event": name,
                "userId": f"user {SCRIPT}",
                "messageId": uuid.uuid4().hex,
                "properties": {"x": IMG, SCRIPT: JS_URL},
                "context": {"page": {"url": JS_URL, "referrer": SCRIPT, "title": IMG}, "userAgent": SVG},
            },
            received_at=now,
        )
        for name in (IMG, SCRIPT, SVG)
    ]
    event_services.events_store(source=source, messages=messages, rejections=[], received_at=now)
    RejectedEvent.objects.create(
        source=source, received_at=now, reason=f"bad {IMG}", payload={"event": SCRIPT, "x": IMG}
    )
    # an import whose file and rejected rows hold payloads
    job = ImportJob.objects.create(
        created_by=admin,
        original_name=f"{IMG}.csv",
        encoding="utf-8",
        headers=["email", f"first {SCRIPT}"],
        total_rows=1,
        error_count=1,
        status="done",
        finished_at=timezone.now(),
    )
    job.file.save("hostile.csv", ContentFile(f'email,"first {SCRIPT}"\nx@xss.test,"{IMG}"\n'.encode()))
    ImportRowError.objects.create(job=job, row_number=1, reason=f"Invalid {SCRIPT}", values=[IMG, JS_URL])
    return Hostile(
        contact=contact,
        company=company,
        deal_id=deal.pk,
        import_job=job,
        **_hostile_cdp(admin=admin, contact=contact),
        **_hostile_mail(admin=admin, contact=contact),
    )


def _hostile_cdp(*, admin, contact: Contact) -> dict:
    """What the identity worker, the segment engine and the notifier leave behind, every string
    hostile: the person's web events (page paths, event names, properties, context), identifiers,
    warnings, a merge, segments (names, descriptions, a definition, a webhook URL), a notification,
    identity settings and a failed erasure."""
    now = timezone.now()
    stored_contact_event(
        contact,
        at=now - timedelta(minutes=30),
        type="page",
        path=f"/p/{SCRIPT}",
        properties={"path": f"/p/{SCRIPT}", "title": IMG, "referrer": JS_URL, SCRIPT: SVG},
        context={"page": {"url": JS_URL, "title": SCRIPT}, "userAgent": SVG},
        anonymous_id=f"anon {IMG}",
    )
    stored_contact_event(
        contact,
        at=now - timedelta(minutes=20),
        type="track",
        name=f"Clicked {SVG}",
        properties={"plan": IMG, "url": JS_URL, SVG: SCRIPT},
        anonymous_id=f"anon {IMG}",
    )
    link_identity(contact, kind="anonymous_id", value=f"anon {IMG}")
    # not the tracked events' "user …" id: a session Celery worker may be stitching those meanwhile
    link_identity(contact, kind="user_id", value=f"crm-user {SCRIPT}")
    IdentityWarning.objects.create(
        kind=WarningKind.REFUSED_MERGE,
        detail=f"Different user ids: {IMG}",
        contact=contact,
        identity_kind="user_id",
        identity_value=SCRIPT,
    )
    HotRule.objects.create(name=f"hot {IMG}", path_contains=SCRIPT)
    BlockedValue.objects.create(value=SVG)
    loser = contact_services.contact_create(
        actor=None, first_name=SVG, last_name=IMG, email="merged@xss.test"
    )
    Contact.objects.filter(pk=loser.pk).update(traits={"plan": SCRIPT, IMG: "tracked"})  # from identify
    contact_merging.contact_merge(winner=contact, loser=loser, field_choices={}, actor=admin)
    merge = ContactMerge.objects.get(winner=contact, loser=loser)
    static = Segment.objects.create(name=f"Seg {IMG}", description=f"About {SCRIPT}", kind=SegmentKind.STATIC)
    Membership.objects.create(segment=static, contact=contact, entered_at=now)
    MembershipChange.objects.create(segment=static, contact=contact, kind="entered", at=now)
    Webhook.objects.create(segment=static, url=f"https://8.8.8.8/hook?x={SVG}", secret="not-shown")
    dynamic = Segment.objects.create(
        name=f"Dyn {SVG}",
        description=IMG,
        definition={
            "op": "and",
            "conditions": [
                {"type": "page", "where": [{"property": "path", "operator": "contains", "value": SCRIPT}]},
                {"type": "event", "name": IMG, "count": {"operator": "gte", "value": 1}},
            ],
        },
    )
    Notification.objects.create(user=admin, title=f"Hot deal {IMG}", body=f"{SCRIPT}\n{TEMPLATE}", url=JS_URL)
    erasure = ErasureRequest.objects.create(
        status=ErasureStatus.FAILED, contact=contact, requested_by=admin, failure=IMG
    )
    return {
        "merge_id": merge.pk,
        "static_segment_id": static.pk,
        "dynamic_segment_id": dynamic.pk,
        "erasure_id": erasure.pk,
    }


def _hostile_mail(*, admin, contact: Contact) -> dict:
    """Email as the sync stores it (parsed from raw bytes, so ingest's own cleaning runs) and, for
    the display layer alone, a message whose stored bodies are raw payloads; an unmatched one in
    the admin's inbox, an attachment with a hostile name, a failing mailbox and a skipped message."""
    from mail.models import EmailMessage, Mailbox, SkippedMessage, SyncState
    from mail.parsing import message_parse
    from mail.services.ingest import IncomingItem, messages_store
    from tests.factories.mail import make_attachment, make_link

    mailbox = Mailbox.objects.create(
        owner=admin, email_address="xss-admin@ourco.test", imap_host="127.0.0.1", username="xss",
        unknown_policy="never", sync_state=SyncState.FAILING, last_error=f"IMAP: {SCRIPT} {IMG}",
        folders=["INBOX", SVG],
    )  # fmt: skip
    SkippedMessage.objects.create(mailbox=mailbox, folder=SVG, uidvalidity=1, uid=1, reason=f"bad {IMG}")

    def raw(n: int, sender: str) -> bytes:
        return (
            f'Message-ID: <xss{n}@xss.test>\r\nFrom: "{SVG}" <{sender}>\r\nTo: xss-admin@ourco.test\r\n'
            f"Subject: Re {IMG} {SCRIPT}\r\nDate: Mon, 02 Nov 2026 09:00:00 +0000\r\n"
            'Content-Type: multipart/alternative; boundary="b"\r\n\r\n'
            f"--b\r\nContent-Type: text/plain\r\n\r\nHi {SCRIPT}\r\n> quoted {IMG}\r\n"
            "--b\r\nContent-Type: text/html\r\n\r\n"
            f'<p onclick=window.__xss=1>{IMG}</p><a href="{JS_URL}">go</a>'
            f"<script>window.__xss=1</script>{SCRIPT}\r\n--b--\r\n"
        ).encode()

    items = [
        IncomingItem(parsed=message_parse(raw=raw(1, "victim@xss.test")), folder="INBOX", uid=1),
        IncomingItem(parsed=message_parse(raw=raw(2, "stranger@xss.test")), folder="INBOX", uid=2),
    ]
    messages_store(mailbox=mailbox, items=items)
    linked = EmailMessage.objects.get(message_key="xss1@xss.test")
    make_attachment(linked, filename=f"{IMG}.pdf", content=b"hostile")
    # Bodies stored raw (as if an older ingest had not cleaned them): the views must still hold.
    raw_bodies = EmailMessage.objects.create(
        message_key="xss-raw@xss.test", thread=linked.thread, subject=f"Raw {SVG}",
        from_address="victim@xss.test",
        from_name=IMG, sent_at=timezone.now(), text_body=f"{SCRIPT}\n> {IMG}",
        html_body=f"<img src=x onerror=window.__xss=1><a href='{JS_URL}'>x</a>{SCRIPT}", snippet=SVG,
    )  # fmt: skip
    make_link(raw_bodies, contact=contact, via=SCRIPT)
    return {"mail_thread_id": linked.thread_id, "mail_message_id": linked.pk, "mailbox_id": mailbox.pk}


@dataclass(frozen=True)
class Page:
    name: str
    path: Callable[[Hostile], str]
    shows_payload: bool = True  # False for pages that show no record text (counts only)


PAGES = [
    Page("home", lambda w: "/", shows_payload=False),
    Page("contact list", lambda w: "/contacts/"),
    Page("contact list search", lambda w: "/contacts/?q=onerror"),
    Page("contact detail", lambda w: f"/contacts/{w.contact.pk}/"),
    Page("contact history", lambda w: f"/contacts/{w.contact.pk}/history/"),
    Page("company list", lambda w: "/companies/"),
    Page("company detail", lambda w: f"/companies/{w.company.pk}/"),
    Page("board", lambda w: "/pipeline/?owner=all"),
    Page("deal detail", lambda w: f"/deals/{w.deal_id}/"),
    Page("my day", lambda w: "/tasks/"),
    Page("global search", lambda w: "/search/?q=" + "%3Cimg"),
    Page("search echo", lambda w: "/search/?q=%22%3E%3Cscript%3Ewindow.__xss%3D1%3C%2Fscript%3E"),
    Page("reports", lambda w: "/reports/"),
    Page("events", lambda w: "/events/"),
    Page("rejected events", lambda w: "/events/rejected/"),
    Page("sources", lambda w: "/sources/"),
    Page("import mapping", lambda w: f"/contacts/import/{w.import_job.pk}/"),
    Page("import progress", lambda w: f"/contacts/import/{w.import_job.pk}/progress/"),
    Page("duplicates", lambda w: "/contacts/duplicates/"),
    Page("pipeline settings", lambda w: "/settings/pipelines/"),
    # identity: the contact page's slots on their own, warnings, the merge log, settings
    Page("web activity panel", lambda w: f"/contacts/{w.contact.pk}/web-activity/"),
    Page("timeline", lambda w: f"/contacts/{w.contact.pk}/timeline/"),
    Page("identity warnings", lambda w: "/identity/warnings/"),
    Page("merge log", lambda w: "/identity/merges/"),
    Page("merge detail", lambda w: f"/identity/merges/{w.merge_id}/"),
    Page("identity settings", lambda w: "/settings/identity/"),
    # segments
    Page("segment list", lambda w: "/segments/"),
    Page("static segment detail", lambda w: f"/segments/{w.static_segment_id}/"),
    Page("dynamic segment detail", lambda w: f"/segments/{w.dynamic_segment_id}/"),
    Page("segment members", lambda w: f"/segments/{w.static_segment_id}/members/"),
    Page("segment builder", lambda w: f"/segments/{w.dynamic_segment_id}/edit/"),
    Page("new segment builder", lambda w: "/segments/new/", shows_payload=False),
    # notifications and privacy (the erasure log keeps no personal data, by design)
    Page("notifications", lambda w: "/notifications/"),
    Page("erasure log", lambda w: "/settings/erasures/", shows_payload=False),
    Page("erasure detail", lambda w: f"/settings/erasures/{w.erasure_id}/"),
    Page("erase confirmation", lambda w: f"/privacy/contact/{w.contact.pk}/erase/"),
    # email: the thread, the Unmatched inbox, mailbox health, the composer replying (quoted text)
    Page("email thread", lambda w: f"/mail/threads/{w.mail_thread_id}/"),
    Page("unmatched email", lambda w: "/mail/unmatched/"),
    Page("mailboxes", lambda w: "/settings/email/"),
    Page("mailbox detail", lambda w: f"/settings/email/mailboxes/{w.mailbox_id}/"),
    Page("email reply", lambda w: f"/mail/compose/?reply_to={w.mail_message_id}"),
    Page("email to contact", lambda w: f"/mail/compose/?contact={w.contact.pk}"),
]

# Evaluated in the page: anything the payloads could have turned into markup.
INJECTED_MARKUP = """() => {
  const found = [];
  if (window.__xss !== undefined) found.push('window.__xss=' + window.__xss);
  for (const el of document.querySelectorAll('*')) {
    for (const attr of el.attributes) {
      const where = el.tagName + ' ' + attr.name;
      if (attr.name.startsWith('on') && attr.value.includes('__xss')) found.push(where);
      if (['href', 'src', 'action', 'formaction', 'xlink:href'].includes(attr.name)
          && attr.value.trim().toLowerCase().startsWith('javascript:')) found.push(where);
    }
  }
  // data islands (json_script: type=application/json, '<' escaped) are inert; executable ones are not
  for (const s of document.scripts) {
    const executable = !s.type || /javascript|ecmascript|module/i.test(s.type);
    if (executable && s.textContent.includes('__xss')) found.push('inline script');
    if (!executable && s.textContent.includes('</script')) found.push('unescaped data island');
  }
  if (document.querySelector('img[src="x"], svg[onload]')) found.push('payload element');
  return found;
}"""


@pytest.fixture
def xss_page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    yield page
    context.close()
    assert dialogs == []


def log_in(page, live_server) -> None:
    page.goto(live_server.url + "/login/")
    page.fill("#id_username", "xss-admin")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/")


def test_no_stored_payload_runs_or_becomes_markup_on_any_page(xss_page, live_server):
    world = make_hostile_world()
    page = xss_page
    log_in(page, live_server)
    report = {}
    for target in PAGES:
        response = page.goto(live_server.url + target.path(world))
        assert response is not None and response.status == 200, (target.name, response and response.status)
        # lazy htmx panels (activities, deals, history) load after the page: let them settle
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(150)
        injected = page.evaluate(INJECTED_MARKUP)
        # what a person reads: the text, and the values in form fields (names being edited)
        text = page.evaluate(
            "() => document.body.innerText + [...document.querySelectorAll('input, textarea')]"
            ".map(e => e.value).join(' ')"
        )
        shown = [p for p in PAYLOADS if p in text] if target.shows_payload else ["(not expected)"]
        report[target.name] = (injected, shown)
    broken = {name: injected for name, (injected, _) in report.items() if injected}
    assert broken == {}, f"payloads became markup or ran: {broken}"
    silent = [name for name, (_, shown) in report.items() if not shown]
    assert silent == [], f"pages that did not show any payload as text (did the data reach them?): {silent}"


def test_the_check_would_catch_an_injection(xss_page, live_server):
    """The detector itself: a page whose markup holds the payload raw is reported."""
    make_admin(username="xss-admin")
    xss_page.goto(live_server.url + "/login/")
    xss_page.set_content(f"<p>{IMG}</p><a href='{JS_URL}'>x</a>")
    xss_page.wait_for_timeout(100)
    found = xss_page.evaluate(INJECTED_MARKUP)
    assert "window.__xss=1" in found and "A href" in found and "payload element" in found


def test_custom_field_values_and_template_syntax_show_verbatim(xss_page, live_server):
    world = make_hostile_world()
    log_in(xss_page, live_server)
    xss_page.goto(f"{live_server.url}/contacts/{world.contact.pk}/")
    text = xss_page.inner_text("body")
    assert f"{SCRIPT} {TEMPLATE}" in text  # the Bio custom field, template syntax unevaluated
    assert IMG in text and SVG in text
    assert xss_page.evaluate(INJECTED_MARKUP) == []
