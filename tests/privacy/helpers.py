"""A person with a long, tangled history, built through the real ingestion and stitching path,
and a scan of every text-like column of the database for their identifiers."""

import json
from dataclasses import dataclass

from django.db import connection
from django.utils import timezone
from psycopg import sql

from accounts.models import Notification
from contacts import services as contact_services
from contacts.models import Contact, ImportJob, ImportRowError
from events import services as event_services
from events.models import RejectedEvent
from identity.models import Identity
from pipeline import services as pipeline_services
from pipeline.models import Activity, Task
from segments.models import Membership, Segment, SegmentKind, Webhook, WebhookDelivery
from tests.factories import identify_payload, make_pipeline, page_payload, send, track_payload
from tests.identity.helpers import drain

EMAIL = "ada.lovelace.q7@example.org"
USER_ID = "uid-ada-q7x9"
ANON_1 = "anon-ada-q7-one"
ANON_2 = "anon-ada-q7-two"
PHONE = "+14155550177"
IDENTIFIERS = [EMAIL, USER_ID, ANON_1, ANON_2, PHONE]


@dataclass
class Person:
    contact: Contact
    deal_id: int
    bystander: Contact


def build_person(client, source, *, admin, events: int) -> Person:
    """A CRM contact typed by a rep, two devices that identify as them (one merge leaves a
    tombstone), `events` page views, activities, a task, a deal, segment membership, a webhook
    delivery, a notification, field history, a rejected event and a failed import row."""
    # Fast on purpose: the default per-source limit would answer 429 to this test's burst.
    source.rate_limit_per_second = 10**7
    source.save(update_fields=["rate_limit_per_second"])
    event_services.ingest_caches_reset()  # the source as it is now, not as cached
    contact = contact_services.contact_create(
        actor=admin, first_name="Ada", last_name="Lovelace", email=EMAIL, phone=PHONE
    )
    contact_services.contact_update(contact=contact, actor=admin, title="Countess")
    send(client, source, page_payload("/a", anonymous_id=ANON_1), page_payload("/b", anonymous_id=ANON_2))
    drain()  # two anonymous visitors
    send(
        client,
        source,
        identify_payload({"email": EMAIL.upper()}, anonymous_id=ANON_1, user_id=USER_ID, at=1),
        identify_payload({}, anonymous_id=ANON_2, user_id=USER_ID, at=2),
    )
    drain()  # both visitors fold into the CRM contact: merges and tombstones
    sent = 2
    batch = []
    while sent < events:
        batch.append(track_payload("Viewed", anonymous_id=ANON_1 if sent % 2 else ANON_2, at=sent % 5000))
        sent += 1
        if len(batch) == 500:
            send(client, source, *batch)
            batch = []
    if batch:
        send(client, source, *batch)
    drain()
    # a message the API rejects (no event name) is kept with the identifiers it carried (a batch
    # of nothing else: answered 400)
    body = json.dumps({"batch": [{"type": "track", "userId": USER_ID}], "writeKey": source.write_key})
    assert client.post("/v1/batch", body, content_type="application/json").status_code == 400
    assert RejectedEvent.objects.exists()

    contact.refresh_from_db()
    assert contact.merged_into_id is None
    assert Contact.objects.filter(merged_into=contact).exists(), "a tombstone"
    stage = make_pipeline().stages.first()
    bystander = contact_services.contact_create(actor=admin, first_name="Bob", email="bob.q7@example.net")
    deal = pipeline_services.deal_create(
        actor=admin, title="Analytical engine", stage=stage, contact=contact, participants=[bystander]
    )
    now = timezone.now()
    Activity.objects.create(kind="note", body=f"Called {EMAIL}", contact=contact, occurred_at=now)
    Activity.objects.create(kind="call", subject="Deal call", deal=deal, occurred_at=now)
    Task.objects.create(title="Send the notes", assignee=admin, contact=contact)
    segment = Segment.objects.create(name="Readers", kind=SegmentKind.STATIC)
    Membership.objects.create(segment=segment, contact=contact, entered_at=now)
    Membership.objects.create(segment=segment, contact=bystander, entered_at=now)
    webhook = Webhook.objects.create(segment=segment, url="https://hooks.example.com/x", secret="whsec_x")
    for who in (contact, bystander):
        WebhookDelivery.objects.create(
            webhook=webhook,
            message_id=f"msg_{who.pk}",
            event_type="segment.entered",
            payload={"data": {"contact": {"id": who.pk, "email": who.email, "first_name": who.first_name}}},
            next_attempt_at=now,
        )
    Notification.objects.create(
        user=admin, title="Hot deal", body="Ada Lovelace viewed /pricing", url=f"/deals/{deal.pk}/"
    )
    Notification.objects.create(user=admin, title="Hi", body="Ada", url=contact.get_absolute_url())
    Notification.objects.create(user=admin, title="Other", body="Bob called", url="/deals/")
    job = ImportJob.objects.create(original_name="people.csv", encoding="utf-8", created_by=admin)
    ImportRowError.objects.create(job=job, row_number=1, reason="duplicate", values=["Ada", EMAIL.title()])
    ImportRowError.objects.create(
        job=job, row_number=2, reason="duplicate", values=["Bob", "bob.q7@example.net"]
    )
    assert Identity.objects.filter(contact=contact).count() >= 4
    return Person(contact=contact, deal_id=deal.pk, bystander=bystander)


TEXT_TYPES = ("text", "character varying", "character", "json", "jsonb", "ARRAY")


def rows_mentioning(values: list[str]) -> dict[str, int]:
    """Every column of every table of the public schema whose type can hold text (from
    information_schema, not a hand list), searched case-insensitively for each value."""
    patterns = [f"%{v.lower()}%" for v in values]
    found = {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.table_name, c.column_name FROM information_schema.columns c"
            " JOIN information_schema.tables t USING (table_schema, table_name)"
            " WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' AND c.data_type = ANY(%s)",
            [list(TEXT_TYPES)],
        )
        columns = cursor.fetchall()
        assert len(columns) > 50, columns  # the scan really covers the schema
        for table, column in columns:
            query = sql.SQL("SELECT count(*) FROM {} WHERE lower({}::text) LIKE ANY(%s)").format(
                sql.Identifier(table), sql.Identifier(column)
            )
            cursor.execute(query.as_string(connection.connection), [patterns])
            if n := cursor.fetchone()[0]:
                found[f"{table}.{column}"] = n
    return found
