"""The contact timeline of a contact with 5,000 emails (issue: p95 < 100 ms).

    cdp_crm.dev exec --database cdp_crm_mail_bench2 --redis-db N -- .venv/bin/python \
        bench/email_timeline.py [--emails 5000] [--background 45000] \
        [--background-days 730] [--requests 40] [--reseed]

Seeds (generate_series, once; `--reseed` starts over) a rep's mailbox, a company, a contact with
`--emails` messages over two years, each with its participants and copy (a tenth with an
attachment), linked to the contact, her company and her deal, and 200 notes on her; a second
contact (the floor) has the same notes and no email; 900 other contacts hold `--background`
messages (links and messages only) over the last `--background-days` (730: hers are a tenth of
every stretch of time; 30: the others' recent mail buries hers). Then prints, for GET of the
timeline fragment (identity:timeline, the Django test client, DEBUG off) on the first page and on
a page 2,500 items deep (`?cursor=`), p50/p95 over `--requests` requests for both contacts and the
ratio to the floor; the mail selector alone beside the one it replaced (the record's links
joined to their messages and ordered by the message's sent_at), with that one's plan; and the
plan of the email query on the deep page.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import setup_django  # noqa: E402

MARK = "bench-email-timeline"  # the seeded rows' marker (contact emails, message keys)
NOTES = 200
HTMX = {"HTTP_HX_REQUEST": "true"}


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def _execute(sql: str, params=None) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])


def seed(*, emails: int, background: int, background_days: int, reseed: bool):
    """(rep, contact with email, floor contact, deal): created once, found on later runs."""
    from accounts import services as accounts
    from accounts.models import Role
    from contacts.models import Company, Contact
    from mail.models import Mailbox
    from pipeline.models import Deal, Pipeline, Stage
    from pipeline.services import activities

    ada = Contact.objects.filter(email=f"ada@{MARK}.test").first()
    if ada is not None and not reseed:
        floor = Contact.objects.get(email=f"floor@{MARK}.test")
        deal = Deal.objects.filter(contact=ada).first()
        mailbox = Mailbox.objects.get(email_address=f"rep@{MARK}.test")
        return mailbox.owner, ada, floor, deal
    if ada is not None:
        seeded = "SELECT id FROM mail_emailmessage WHERE message_key LIKE %s"
        for table in (
            "mail_emaillink",
            "mail_emailattachment",
            "mail_emailparticipant",
            "mail_mailboxmessage",
        ):
            _execute(f"DELETE FROM {table} WHERE message_id IN ({seeded})", [f"{MARK}:%"])
        _execute(seeded.replace("SELECT id", "DELETE"), [f"{MARK}:%"])
        _execute("DELETE FROM mail_emailthread WHERE subject LIKE %s", [f"{MARK}%"])
        Deal.objects.filter(contact__email__endswith=f"@{MARK}.test").delete()
        Contact.objects.filter(email__endswith=f"@{MARK}.test").delete()
        Company.objects.filter(domain=f"{MARK}.test").delete()
        Mailbox.objects.filter(email_address=f"rep@{MARK}.test").delete()

    started = time.perf_counter()
    rep = accounts.user_create(username=f"{MARK}-{time.time_ns()}", password=None, role=Role.SALES)
    mailbox = Mailbox.objects.create(
        owner=rep, email_address=f"rep@{MARK}.test", imap_host="imap.invalid", username="rep"
    )
    company = Company.objects.create(name="Bench Co", domain=f"{MARK}.test")
    ada = Contact.objects.create(first_name="Ada", email=f"ada@{MARK}.test", company=company)
    floor = Contact.objects.create(first_name="Floor", email=f"floor@{MARK}.test", company=company)
    stage = Stage.objects.order_by("pipeline_id", "position").first()
    if stage is None:
        stage = Stage.objects.create(pipeline=Pipeline.objects.create(name="Sales"), name="New")
    deal = Deal.objects.create(
        title="Bench deal", contact=ada, stage=stage, pipeline=stage.pipeline, owner=rep
    )
    # One message every ~3.5 hours back from now: 5,000 span two years; the notes span them too.
    step_minutes = 2 * 365 * 24 * 60 // emails
    _execute(
        """
        INSERT INTO mail_emailthread (subject, last_message_at, created_at)
        SELECT %s || ' ' || t, now(), now() FROM generate_series(1, 250) AS t
        """,
        [MARK],
    )
    _execute(
        """
        WITH threads AS (SELECT array_agg(id ORDER BY id) AS ids FROM mail_emailthread WHERE subject LIKE %s)
        INSERT INTO mail_emailmessage (message_key, header_message_id, in_reply_to, "references", subject,
            from_address, from_name, sent_at, text_body, html_body, snippet, size_bytes, has_attachments,
            created_at, thread_id)
        SELECT %s || ':' || n, '<' || n || '@' || %s || '.test>', '', '[]'::jsonb, 'Re: quote ' || n,
            CASE WHEN n %% 2 = 0 THEN %s ELSE %s END, '', now() - make_interval(mins => n * %s),
            repeat('Thanks for the call. ', 20), '', 'Thanks for the call.', 420, n %% 10 = 0, now(),
            threads.ids[1 + n %% 250]
        FROM generate_series(1, %s) AS n, threads
        """,
        [f"{MARK}%", MARK, MARK, ada.email, mailbox.email_address, step_minutes, emails],
    )
    ids = f"SELECT id, sent_at, from_address FROM mail_emailmessage WHERE message_key LIKE '{MARK}:%%'"
    _execute(
        f"""
        INSERT INTO mail_emailparticipant (message_id, role, address, name, contact_id, user_id)
        SELECT id, 'from', from_address, '', CASE WHEN from_address = %s THEN %s END,
            CASE WHEN from_address = %s THEN %s END FROM ({ids}) AS m
        UNION ALL
        SELECT id, 'to', CASE WHEN from_address = %s THEN %s ELSE %s END, '',
            CASE WHEN from_address = %s THEN NULL ELSE %s END,
            CASE WHEN from_address = %s THEN %s END FROM ({ids}) AS m
        """,
        [ada.email, ada.pk, mailbox.email_address, rep.pk]
        + [ada.email, mailbox.email_address, ada.email, ada.email, ada.pk, ada.email, rep.pk],
    )
    _execute(
        f"""
        INSERT INTO mail_mailboxmessage (mailbox_id, message_id, folder, uid, direction, triage, created_at)
        SELECT %s, id, CASE WHEN from_address = %s THEN 'INBOX' ELSE '' END, id,
            CASE WHEN from_address = %s THEN 'incoming' ELSE 'outgoing' END, 'linked', now()
        FROM ({ids}) AS m
        """,
        [mailbox.pk, ada.email, ada.email],
    )
    _execute(
        """
        INSERT INTO mail_emailattachment (message_id, filename, content_type, size_bytes, sha256, file,
            skipped_reason, content_id)
        SELECT id, 'quote.pdf', 'application/pdf', 40000000, md5(id::text) || md5(id::text), '',
            'Larger than the mailbox''s limit', ''
        FROM mail_emailmessage WHERE message_key LIKE %s AND has_attachments
        """,
        [f"{MARK}:%"],
    )
    records = [
        ("contact_id", ada.pk, "address"),
        ("company_id", company.pk, "company"),
        ("deal_id", deal.pk, "deal"),
    ]
    for column, record_id, reason in records:
        _execute(
            f"""
            INSERT INTO mail_emaillink (message_id, {column}, sent_at, reason, via, created_at)
            SELECT id, %s, sent_at, %s, %s, now() FROM ({ids}) AS m
            """,
            [record_id, reason, ada.email],
        )
    # Other contacts' mail over the last `background_days`: over Ada's two years, hers is a tenth
    # of every stretch of time; over a month, the workspace's current mail outnumbers her recent
    # mail (then walking all messages by sent_at to find hers reads many rows).
    others = background // 50
    Contact.objects.bulk_create(
        [
            Contact(first_name=f"Other {i}", email=f"other{i}@{MARK}.test", company=company)
            for i in range(others)
        ]
    )
    _execute(
        """
        WITH threads AS (SELECT array_agg(id ORDER BY id) AS ids FROM mail_emailthread WHERE subject LIKE %s),
        people AS (SELECT array_agg(id ORDER BY id) AS ids FROM contacts_contact WHERE email LIKE %s),
        stored AS (
            INSERT INTO mail_emailmessage (message_key, header_message_id, in_reply_to, "references", subject,
                from_address, from_name, sent_at, text_body, html_body, snippet, size_bytes, has_attachments,
                created_at, thread_id)
            SELECT %s || ':other:' || n, '', '', '[]'::jsonb, 'Other ' || n, 'other@' || %s || '.test', '',
                now() - make_interval(mins => n * %s), '', '', '', 0, false, now(), threads.ids[1 + n %% 250]
            FROM generate_series(1, %s) AS n, threads
            RETURNING id, sent_at
        )
        INSERT INTO mail_emaillink (message_id, contact_id, sent_at, reason, via, created_at)
        SELECT stored.id, people.ids[1 + stored.id %% %s], stored.sent_at, 'address', '', now()
        FROM stored, people
        """,
        [
            f"{MARK}%",
            f"other%@{MARK}.test",
            MARK,
            MARK,
            background_days * 24 * 60 // max(background, 1),
            background,
            others,
        ],
    )
    span = step_minutes * emails
    for contact in (ada, floor):
        for i in range(NOTES):
            activities.activity_log(
                actor=rep,
                kind="note",
                body=f"Note {i}",
                contact=contact,
                occurred_at=time_ago(minutes=span * i // NOTES + 7),
            )
    _execute("ANALYZE mail_emaillink; ANALYZE mail_emailmessage; ANALYZE mail_emailparticipant")
    print(
        f"seeded {emails} emails (x3 links), {background} others', {NOTES} notes x2 "
        f"in {time.perf_counter() - started:.1f} s"
    )
    return rep, ada, floor, deal


def time_ago(*, minutes: int):
    import datetime as dt

    from django.utils import timezone

    return timezone.now() - dt.timedelta(minutes=minutes)


def timed(fn, requests: int) -> list[float]:
    for _ in range(3):  # warm the caches and the connection
        fn()
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return times


def bench_fragment(*, rep, ada, floor, requests: int) -> str:
    from django.test import Client
    from django.urls import reverse

    from identity import selectors

    client = Client()
    client.force_login(rep)
    # A cursor 2,500 items down Ada's timeline; as an instant it cuts the floor's notes alike.
    deep = selectors.contact_timeline(user=rep, contact=ada, size=2500).next_cursor
    assert deep
    for page, cursor in (("first page", None), ("deep page (2,500 items in)", deep)):
        figures = {}
        for label, contact in (("no email (floor)", floor), ("5,000 emails", ada)):
            url = reverse("identity:timeline", args=[contact.pk])
            params = {"cursor": cursor} if cursor else {}

            def get(url=url, params=params):
                response = client.get(url, params, **HTMX)
                assert response.status_code == 200

            figures[label] = timed(get, requests)
        floor_p50 = pct(figures["no email (floor)"], 0.5)
        for label, times in figures.items():
            print(
                f"timeline GET {page:<27} {label:<17} p50 {ms(pct(times, 0.5)):>9} "
                f"p95 {ms(pct(times, 0.95)):>9}  x{pct(times, 0.5) / floor_p50:.2f} floor ({requests} req.)"
            )
    return deep


def bench_selector(*, rep, ada, deal, until, requests: int) -> None:
    """record_messages beside the selector it replaced: the same annotations and prefetch, the
    links ordered by their message's sent_at (a join) rather than their own."""
    from django.db import connection
    from django.db.models import Exists, OuterRef
    from django.db.models import prefetch_related_objects as prefetch

    from contacts.permissions import ensure_can_read
    from mail.models import Direction, EmailLink, MailboxMessage
    from mail.selectors import messages

    def replaced(*, until=None, limit, **record):
        ensure_can_read(rep)
        ((name, value),) = record.items()
        links = (
            EmailLink.objects.filter(**{f"{name}_id": value.pk})
            .select_related("message")
            .annotate(
                attachment_count=messages._listed_attachments(),
                sent=Exists(
                    MailboxMessage.objects.filter(
                        message_id=OuterRef("message_id"), direction=Direction.OUTGOING
                    )
                ),
            )
            .order_by("-message__sent_at", "-message_id")
        )
        if until is not None:
            links = links.filter(message__sent_at__lte=until)
        rows = list(links[:limit])
        prefetch([link.message for link in rows], messages._participants())
        return links

    for label, record, cut in (
        ("contact, first page", {"contact": ada}, None),
        ("contact, deep page", {"contact": ada}, until),
        ("deal, first page", {"deal": deal}, None),
    ):
        new = timed(
            lambda r=record, u=cut: messages.record_messages(user=rep, limit=21, until=u, **r), requests
        )
        old = timed(lambda r=record, u=cut: replaced(limit=21, until=u, **r), requests)
        print(
            f"mail selector  {label:<20} record_messages p50 {ms(pct(new, 0.5)):>8} "
            f"p95 {ms(pct(new, 0.95)):>8} | the selector it replaced p50 {ms(pct(old, 0.5)):>8} "
            f"p95 {ms(pct(old, 0.95)):>8}"
        )
    sql, params = replaced(contact=ada, limit=21)[:21].query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, COSTS OFF) " + sql, params)
        plan = [row[0] for row in cursor.fetchall()]
    print("plan of the replaced selector's query on the contact's first page (subplans left out):")
    for line in plan:
        if "SubPlan" in line:
            break
        print("   ", line)
    print("   ", plan[-1])


def explain_deep(*, rep, ada, deep: str) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from identity import selectors

    with CaptureQueriesContext(connection) as captured:
        selectors.contact_timeline(user=rep, contact=ada, cursor=deep, size=20)
    (sql,) = [q["sql"] for q in captured.captured_queries if 'FROM "mail_emaillink"' in q["sql"]]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql)
        plan = [row[0] for row in cursor.fetchall()]
    print("plan of the email query on the deep page (subplans left out):")
    for line in plan:
        if "SubPlan" in line:
            break
        print("   ", line)
    print("   ", plan[-1])


def selectors_until(cursor: str):
    """The instant a contact-timeline cursor hands its sources."""
    from identity import selectors

    return selectors._decode_timeline_cursor(cursor)[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--emails", type=int, default=5000)
    parser.add_argument("--background", type=int, default=45000, help="other contacts' messages")
    parser.add_argument("--background-days", type=int, default=730, help="the span of the others' mail")
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--reseed", action="store_true")
    args = parser.parse_args()
    setup_django()
    from django.conf import settings
    from django.core.management import call_command

    assert not settings.DEBUG, "run with DJANGO_DEBUG=0"
    call_command("migrate", verbosity=0)
    rep, ada, floor, deal = seed(
        emails=args.emails,
        background=args.background,
        background_days=args.background_days,
        reseed=args.reseed,
    )
    deep = bench_fragment(rep=rep, ada=ada, floor=floor, requests=args.requests)
    until = selectors_until(deep)
    bench_selector(rep=rep, ada=ada, deal=deal, until=until, requests=args.requests)
    explain_deep(rep=rep, ada=ada, deep=deep)


if __name__ == "__main__":
    main()
