"""The permission matrix: role x object x action, for the HTML views and the REST API, generated from
ONE table of expectations (Pipedrive/HubSpot-like: Admin does everything; Sales reads every record
and changes its own or unowned ones; Marketing reads the CRM and manages sources; anonymous users are
sent to the login page, or get 401 from the API).

Every request is checked three ways: the status (allowed → success, refused → 403/404, anonymous →
login redirect / 401), the content (text that must show, and text that must not: another user's
token, saved view or task, a write key), and the database (a fingerprint of every row of every
project table, taken before and after: it changes exactly when the role is expected to write).

`test_every_url_pattern_is_in_the_matrix` walks the URL conf: a new view without a matrix entry, or
an explicit place in PUBLIC / SELF_SERVICE, fails it.
"""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.apps import apps
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import connection
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from psycopg import sql

from accounts import services as account_services
from accounts.models import Notification
from contacts import services as contact_services
from contacts.models import ContactMerge, ImportJob, ImportRowError, SavedView
from contacts.services import merging as contact_merging
from events.models import Event, IngestQueue, Source
from identity.models import BlockedValue, ContactEvent, HotRule, Identity, IdentityWarning, WarningKind
from mail.models import (
    EmailMessage,
    EmailParticipant,
    EmailTemplate,
    EmailThread,
    Mailbox,
    MailboxMessage,
    NeverLogEntry,
)
from pipeline import services as pipeline_services
from pipeline.models import LostReason, Pipeline, Stage
from pipeline.services import activities
from predictions.models import Goal, ModelStatus, Prediction, PredictionModel
from privacy.models import ErasureRequest, ErasureStatus
from scoring.models import Score, ScoreModel
from segments.models import Membership, Segment, SegmentKind, Webhook, WebhookDelivery
from tests.conftest import migrated_rows_restore
from tests.factories import make_admin, make_company, make_contact, make_user
from tests.factories.mail import make_attachment, make_link, make_message, make_outgoing
from traits.models import CompanyTraitValue, TraitDefinition, TraitValue

pytestmark = pytest.mark.django_db

ROLES = ("admin", "owner", "other", "marketing", "anon")
ALL = frozenset({"admin", "owner", "other", "marketing"})
SALES = frozenset({"admin", "owner", "other"})  # may create CRM records
OWNER = frozenset({"admin", "owner"})  # may change what the Sales rep "owner" owns / wrote / is assigned
ADMIN = frozenset({"admin"})
MANAGERS = frozenset({"admin", "marketing"})  # sources and the events debugger
SELF = frozenset({"owner"})  # per-user things (a token, a saved view): only their user
NOBODY = frozenset()
HTMX = {"HX-Request": "true"}


class World:
    """One of each object, owned by (or written by, or assigned to) the Sales rep "owner"."""

    def __init__(self) -> None:
        self.users = {
            "admin": make_admin(username="m-admin"),
            "owner": make_user(role="Sales", username="m-owner"),
            "other": make_user(role="Sales", username="m-other"),
            "marketing": make_user(role="Marketing", username="m-marketing"),
        }
        owner = self.users["owner"]
        self.company = make_company(name="Matrix Co", domain="matrix.test", owner=owner)
        self.contact = make_contact(
            first_name="Mara", last_name="Trix", email="mara@matrix.test", owner=owner, company=self.company
        )
        self.twin = make_contact(first_name="Mara", last_name="Trix", email="mara2@matrix.test", owner=owner)
        self.pipeline = Pipeline.objects.create(name="Matrix pipeline")
        self.stages = [
            Stage.objects.create(pipeline=self.pipeline, name=name, probability=p, position=i)
            for i, (name, p) in enumerate((("Lead", 10), ("Demo", 40), ("Empty", 60)))
        ]
        # a second pipeline with nothing in it, for the API's delete
        self.spare_pipeline = Pipeline.objects.create(name="Matrix spare", position=1)
        Stage.objects.create(pipeline=self.spare_pipeline, name="Only", probability=10)
        self.reason = LostReason.objects.create(name="Price")
        self.deal = pipeline_services.deal_create(
            actor=owner, title="Matrix deal", stage=self.stages[0], contact=self.contact, owner=owner
        )
        self.activity = activities.activity_log(
            actor=owner, kind="note", body="Matrix note", contact=self.contact
        )
        self.task = activities.task_create(
            actor=owner, title="Matrix task", due_at=timezone.now() + timedelta(hours=3), contact=self.contact
        )
        self.custom_field = contact_services.custom_field_create(
            actor=None, entity="contact", label="Shoe size", field_type="text"
        )
        self.saved_view = SavedView.objects.create(
            user=owner, entity="contact", name="Owner-view-xyz", query=""
        )
        self.import_job = ImportJob.objects.create(
            created_by=owner, original_name="people.csv", encoding="utf-8", headers=["email"]
        )
        self.import_job.file.save("people.csv", ContentFile(b"email\nmara3@matrix.test\n"))
        ImportRowError.objects.create(job=self.import_job, row_number=1, reason="bad email", values=["x"])
        self.token, self.raw_token = account_services.api_token_create(user=owner, name="owner-token")
        self.source = Source.objects.create(name="Matrix site")
        event = Event.objects.create(
            source=self.source,
            message_id="m1",
            type="track",
            event="Dead",
            user_id="u",
            timestamp=timezone.now(),
            received_at=timezone.now(),
        )
        self.dead = IngestQueue.objects.create(
            event=event, enqueued_at=timezone.now(), attempts=5, dead_at=timezone.now(), last_error="boom"
        )
        # --- identity: the contact's identifier, one page view, a warning, settings rows, a merge
        now = timezone.now()
        Identity.objects.create(contact=self.contact, kind="email", value="mara@matrix.test")
        viewed = Event.objects.create(
            source=self.source,
            message_id="m-page",
            type="page",
            anonymous_id="anon-mara",
            properties={"path": "/matrix-pricing"},
            timestamp=now - timedelta(minutes=5),
            received_at=now,
        )
        ContactEvent.objects.create(
            event=viewed,
            contact=self.contact,
            type="page",
            path="/matrix-pricing",
            timestamp=viewed.timestamp,
            received_at=viewed.received_at,
        )
        IdentityWarning.objects.create(
            kind=WarningKind.CAP_HIT, detail="Matrix warning", contact=self.contact, identity_kind="email"
        )
        self.hot_rule = HotRule.objects.create(name="matrix-hot", path_contains="/matrix-pricing")
        self.blocked = BlockedValue.objects.create(value="matrix-junk")
        winner = make_contact(first_name="Winnie", email="winnie@matrix.test", owner=owner)
        loser = make_contact(first_name="Lou", email="lou@matrix.test", owner=owner)
        contact_merging.contact_merge(winner=winner, loser=loser, field_choices={}, actor=self.users["admin"])
        self.merge = ContactMerge.objects.get(winner=winner, loser=loser)
        # --- segments: a static one holding the contact, with a webhook and a delivery
        self.segment = Segment.objects.create(
            name="Matrix static", description="Matrix audience", kind=SegmentKind.STATIC
        )
        Membership.objects.create(segment=self.segment, contact=self.contact, entered_at=now)
        self.webhook = Webhook.objects.create(
            segment=self.segment, url="https://8.8.8.8/matrix-hook", secret="matrix-secret-xyz"
        )
        WebhookDelivery.objects.create(
            webhook=self.webhook,
            message_id="matrix-delivery",
            event_type="segment.entered",
            payload={},
            next_attempt_at=now,
        )
        # --- predictions: a published model scoring the contact
        self.prediction_model = PredictionModel.objects.create(
            name="Matrix model", goal=Goal.EVENT, event_name="Order Completed", status=ModelStatus.PUBLISHED
        )
        # (update_or_create, here and below: the hostile-text tests build this world in autocommit,
        # where a running Celery worker's realtime drain may write the same derived rows first)
        Prediction.objects.update_or_create(
            model=self.prediction_model,
            contact=self.contact,
            defaults={"probability": 0.42, "percentile": 90.0, "scored_at": now},
        )
        # --- scoring: a model with the contact's explained score
        self.score_model = ScoreModel.objects.create(
            name="Matrix score", fit_rules=[{"label": "Any", "field": "email", "op": "is_set", "points": 7}]
        )
        Score.objects.update_or_create(
            model=self.score_model,
            contact=self.contact,
            defaults={
                "score": 7,
                "fit": 7,
                "engagement": 0,
                "explanation": [{"part": "fit", "label": "Any", "points": 7, "rule": 0}],
                "updated_at": now,
            },
        )
        # --- traits: a contact trait with the contact's value, a company trait rolling it up
        self.trait = TraitDefinition.objects.create(key="matrix_orders", name="Matrix orders", kind="count")
        TraitValue.objects.update_or_create(
            trait=self.trait, contact=self.contact, defaults={"number": 3, "computed_at": now}
        )
        self.account_trait = TraitDefinition.objects.create(
            key="matrix_buyers", name="Matrix buyers", kind="account_count", source=self.trait
        )
        CompanyTraitValue.objects.update_or_create(
            trait=self.account_trait, company=self.company, defaults={"number": 1, "computed_at": now}
        )
        # --- privacy: a finished erasure in the log
        self.erasure = ErasureRequest.objects.create(
            status=ErasureStatus.DONE,
            requested_by=self.users["admin"],
            finished_at=now,
            deleted={"contacts": 1},
        )
        # --- notifications: the Sales rep "owner" has one, unread
        self.notification = Notification.objects.create(user=owner, title="Matrix notice", url="/contacts/")
        # --- mail: the rep "owner"'s mailbox, holding one message nothing matched (private to
        # them), a personal never-log entry of theirs and a workspace one
        self.mailbox = Mailbox.objects.create(
            owner=owner, email_address="m-owner@ourco.test", imap_host="127.0.0.1", username="m-owner"
        )
        thread = EmailThread.objects.create(subject="Matrix private mail")
        self.mail_message = EmailMessage.objects.create(
            message_key="matrix-private@mail.test",
            header_message_id="<matrix-private@mail.test>",
            thread=thread,
            subject="Matrix private mail",
            from_address="stranger@elsewhere.test",
            sent_at=now,
        )
        EmailParticipant.objects.create(
            message=self.mail_message, role="from", address="stranger@elsewhere.test"
        )
        self.mail_copy = MailboxMessage.objects.create(
            mailbox=self.mailbox, message=self.mail_message, folder="INBOX", uid=1, direction="incoming"
        )
        # its attachment (the owner's only, like the message), and a message on the contact's
        # timeline with an attachment (every CRM reader opens both)
        self.mail_attachment = make_attachment(
            self.mail_message, filename="matrix-private.pdf", content=b"matrix private bytes"
        )
        self.mail_linked = make_message(sender="mara@matrix.test", subject="Matrix linked mail", sent_at=now)
        make_link(self.mail_linked, contact=self.contact, via="mara@matrix.test")
        self.mail_linked_attachment = make_attachment(
            self.mail_linked, filename="matrix-linked.pdf", content=b"matrix linked bytes"
        )
        # a send "owner" scheduled for tomorrow (only its sender may cancel it)
        # (from a second mailbox: one that has sent cannot be disconnected, only paused)
        sending_box = Mailbox.objects.create(
            owner=owner, email_address="m-owner-send@ourco.test", imap_host="127.0.0.1", username="m-owner"
        )
        self.mail_send = make_outgoing(
            sending_box, subject="Matrix scheduled", send_at=timezone.now() + timedelta(days=1)
        )
        self.never_log_own = NeverLogEntry.objects.create(value="owner-private.test", owner=owner)
        self.never_log_workspace = NeverLogEntry.objects.create(value="matrix-legal.test")
        # the rep "owner"'s email templates: a personal one (theirs alone) and a shared one
        self.template_personal = EmailTemplate.objects.create(
            owner=owner, name="Matrix personal template", subject="Hi {{ contact.first_name }}", body="Mine"
        )
        self.template_shared = EmailTemplate.objects.create(
            owner=owner,
            name="Matrix shared template",
            subject="Hi {{ contact.first_name }}",
            body="Team",
            shared=True,
        )
        # API tokens of every role, for the REST half of the matrix
        self.api_tokens = {
            role: account_services.api_token_create(user=user, name=f"{role}-api")[1]
            for role, user in self.users.items()
        }


@dataclass(frozen=True)
class Case:
    name: str  # URL name
    obj: str  # object kind, for the report
    action: str  # list, detail, create, update, delete, bulk, export, merge, ...
    ok: frozenset  # roles whose request succeeds
    method: str = "GET"
    kwargs: Callable[[World], dict] = lambda w: {}
    data: Callable[[World], dict] = lambda w: {}
    query: str | Callable[[World], str] = ""  # a query string, or one built from the world
    # roles whose (successful) request writes; None: `ok` for writes, nobody for reads
    writes: frozenset | None = None
    shows: Callable[[World], str] | None = None  # text every allowed answer contains
    hides: dict = field(default_factory=dict)  # role -> (world -> text that must not appear)
    headers: dict = field(default_factory=dict)
    setup: Callable[[World], None] | None = None
    api: bool = False

    @property
    def writers(self) -> frozenset:
        if self.writes is not None:
            return self.writes
        return frozenset() if self.method == "GET" else self.ok

    @property
    def id(self) -> str:
        return f"{self.method} {self.name} ({self.obj}: {self.action})"


def pk(attr: str) -> Callable[[World], dict]:
    return lambda w: {"pk": getattr(w, attr).pk}


def _mail_template(w: World, *, shared: bool = True) -> EmailTemplate:
    """The rep "owner"'s shared (or personal) email template, made on first use in each test
    (before the fingerprint, so it is not the request's write; it rolls back with the test)."""
    name = "Matrix shared template" if shared else "Matrix personal template"
    template, _ = EmailTemplate.objects.get_or_create(
        name=name,
        owner=w.users["owner"],
        defaults={"subject": "Hi {{ contact.first_name }}", "body": "<p>Hello</p>", "shared": shared},
    )
    return template


def _lose(w: World) -> None:
    pipeline_services.deal_mark_lost(deal=w.deal, actor=None, reason="Price")


def _contact_name(w):
    return "Mara"


# A definition every role may preview and the managers may save.
DEFINITION = {
    "op": "and",
    "conditions": [
        {"type": "page", "where": [{"property": "path", "operator": "contains", "value": "/matrix"}]}
    ],
}
NOT_OWNER = ("admin", "other", "marketing")  # roles that must not see the rep "owner"'s notification


def _builder_post(name: str) -> Callable[[World], dict]:
    return lambda w: {
        "name": name,
        "description": "",
        "kind": "dynamic",
        "mode": "json",
        "definition_json": json.dumps(DEFINITION),
        "action": "save",
    }


CASES = [
    # --- contacts
    Case(
        "contacts:list",
        "contact",
        "list",
        ALL,
        shows=_contact_name,
        hides={r: (lambda w: w.saved_view.name) for r in ("admin", "other", "marketing")},
    ),
    Case(
        "contacts:contact_detail",
        "contact",
        "detail",
        ALL,
        kwargs=pk("contact"),
        shows=lambda w: "mara@matrix.test",
    ),
    Case("contacts:contact_history", "contact", "history", ALL, kwargs=pk("contact")),
    Case("contacts:contact_export", "contact", "export", ALL, shows=lambda w: "mara@matrix.test"),
    Case(
        "contacts:contact_create",
        "contact",
        "create",
        SALES,
        "POST",
        data=lambda w: {"first_name": "Neu", "lifecycle_stage": "lead"},
    ),
    Case(
        "contacts:contact_quick_add",
        "contact",
        "create",
        SALES,
        "POST",
        data=lambda w: {"first_name": "Neu", "lifecycle_stage": "lead"},
    ),
    Case(
        "contacts:contact_edit",
        "contact",
        "update",
        OWNER,
        "POST",
        kwargs=pk("contact"),
        data=lambda w: {"first_name": "X", "lifecycle_stage": "lead"},
    ),
    Case(
        "contacts:contact_cell",
        "contact",
        "update",
        OWNER,
        "POST",
        kwargs=lambda w: {"pk": w.contact.pk, "column": "phone"},
        data=lambda w: {"phone": "555"},
        headers=HTMX,
    ),
    Case("contacts:contact_delete", "contact", "delete", OWNER, "POST", kwargs=pk("contact")),
    # bulk: Sales may post it, rows another rep owns are skipped (nothing changes)
    Case(
        "contacts:contact_bulk",
        "contact",
        "bulk delete",
        SALES,
        "POST",
        data=lambda w: {"ids": [w.contact.pk], "action": "delete"},
        writes=OWNER,
    ),
    Case(
        "contacts:contact_columns",
        "list columns",
        "update",
        ALL,
        "POST",
        data=lambda w: {"columns": ["email"]},
    ),
    Case(
        "contacts:contact_saved_view_create",
        "saved view",
        "create",
        ALL,
        "POST",
        data=lambda w: {"name": "Mine", "query": "q=a"},
    ),
    # another user's saved view: a silent no-op, never a delete
    Case(
        "contacts:saved_view_delete",
        "saved view",
        "delete",
        ALL,
        "POST",
        kwargs=pk("saved_view"),
        writes=SELF,
    ),
    # --- companies
    Case("contacts:company_list", "company", "list", ALL, shows=lambda w: "Matrix Co"),
    Case(
        "contacts:company_detail", "company", "detail", ALL, kwargs=pk("company"), shows=lambda w: "Matrix Co"
    ),
    Case("contacts:company_history", "company", "history", ALL, kwargs=pk("company")),
    Case("contacts:company_export", "company", "export", ALL, shows=lambda w: "matrix.test"),
    Case("contacts:company_options", "company", "list", ALL, query="q=Matrix"),
    Case("contacts:company_create", "company", "create", SALES, "POST", data=lambda w: {"name": "NeuCo"}),
    Case("contacts:company_quick_add", "company", "create", SALES, "POST", data=lambda w: {"name": "NeuCo"}),
    Case(
        "contacts:company_edit",
        "company",
        "update",
        OWNER,
        "POST",
        kwargs=pk("company"),
        data=lambda w: {"name": "Renamed Co"},
    ),
    Case(
        "contacts:company_cell",
        "company",
        "update",
        OWNER,
        "POST",
        kwargs=lambda w: {"pk": w.company.pk, "column": "industry"},
        data=lambda w: {"industry": "Rockets"},
        headers=HTMX,
    ),
    Case("contacts:company_delete", "company", "delete", OWNER, "POST", kwargs=pk("company")),
    Case(
        "contacts:company_bulk",
        "company",
        "bulk delete",
        SALES,
        "POST",
        data=lambda w: {"ids": [w.company.pk], "action": "delete"},
        writes=OWNER,
    ),
    Case(
        "contacts:company_columns",
        "list columns",
        "update",
        ALL,
        "POST",
        data=lambda w: {"columns": ["domain"]},
    ),
    Case(
        "contacts:company_saved_view_create",
        "saved view",
        "create",
        ALL,
        "POST",
        data=lambda w: {"name": "Mine", "query": ""},
    ),
    # --- custom field settings (Admin only)
    Case("contacts_tools:custom_fields", "custom field", "list", ADMIN, shows=lambda w: "Shoe size"),
    Case(
        "contacts_tools:custom_fields",
        "custom field",
        "create",
        ADMIN,
        "POST",
        data=lambda w: {"entity": "contact", "label": "Hat size", "field_type": "text"},
    ),
    Case(
        "contacts_tools:custom_field_edit",
        "custom field",
        "update",
        ADMIN,
        "POST",
        kwargs=pk("custom_field"),
        data=lambda w: {"label": "Boot size", "position": 1},
    ),
    Case(
        "contacts_tools:custom_field_delete",
        "custom field",
        "delete",
        ADMIN,
        "POST",
        kwargs=pk("custom_field"),
    ),
    # --- import jobs (Admin and Sales import; a job is seen by its importer and Admins)
    Case("contacts_tools:import_upload", "import job", "create form", SALES),
    Case(
        "contacts_tools:import_mapping",
        "import job",
        "detail",
        OWNER,
        kwargs=pk("import_job"),
        shows=lambda w: "people.csv",
    ),
    Case(
        "contacts_tools:import_preview",
        "import job",
        "preview",
        OWNER,
        "POST",
        kwargs=pk("import_job"),
        data=lambda w: {"col_0": "email"},
        writes=frozenset(),
    ),
    Case("contacts_tools:import_progress", "import job", "detail", OWNER, kwargs=pk("import_job")),
    Case(
        "contacts_tools:import_errors",
        "import job",
        "export",
        OWNER,
        kwargs=pk("import_job"),
        shows=lambda w: "bad email",
    ),
    # --- duplicates and merge
    Case("contacts_tools:duplicates", "contact", "list duplicates", SALES),
    Case(
        "contacts_tools:merge",
        "contact",
        "merge",
        OWNER,
        "POST",
        data=lambda w: {"winner": w.contact.pk, "loser": w.twin.pk},
    ),
    # --- deals and the board
    Case("pipeline:board", "deal", "list", ALL, query="owner=all", shows=lambda w: "Matrix deal"),
    Case(
        "pipeline:board_column",
        "deal",
        "list",
        ALL,
        kwargs=lambda w: {"pk": w.stages[0].pk},
        query="owner=all",
        shows=lambda w: "Matrix deal",
    ),
    Case("pipeline:contact_deals", "deal", "list", ALL, kwargs=pk("contact"), shows=lambda w: "Matrix deal"),
    Case("pipeline:company_deals", "deal", "list", ALL, kwargs=pk("company")),
    Case("pipeline:contact_options", "contact", "list", ALL, query="q=Mara"),
    Case("pipeline:deal_detail", "deal", "detail", ALL, kwargs=pk("deal"), shows=lambda w: "Matrix deal"),
    Case(
        "pipeline:deal_create",
        "deal",
        "create",
        SALES,
        "POST",
        data=lambda w: {"title": "Neu deal", "stage": w.stages[0].pk, "currency": "USD"},
    ),
    Case(
        "pipeline:deal_edit",
        "deal",
        "update",
        OWNER,
        "POST",
        kwargs=pk("deal"),
        data=lambda w: {
            "title": "Edited",
            "currency": "USD",
            "contact": f"Mara Trix (#{w.contact.pk})",
            "owner": w.users["owner"].pk,
        },
    ),
    Case(
        "pipeline:deal_move",
        "deal",
        "move",
        OWNER,
        "POST",
        kwargs=pk("deal"),
        data=lambda w: {"stage": w.stages[1].pk},
    ),
    Case("pipeline:deal_won", "deal", "win", OWNER, "POST", kwargs=pk("deal")),
    Case(
        "pipeline:deal_lost",
        "deal",
        "lose",
        OWNER,
        "POST",
        kwargs=pk("deal"),
        data=lambda w: {"lost_reason": "Price"},
    ),
    Case("pipeline:deal_reopen", "deal", "reopen", OWNER, "POST", kwargs=pk("deal"), setup=_lose),
    Case(
        "pipeline:deal_participants",
        "deal",
        "update",
        OWNER,
        "POST",
        kwargs=pk("deal"),
        data=lambda w: {"add": f"Mara Trix (#{w.twin.pk})"},
    ),
    # --- pipeline settings (Admin only)
    Case("pipeline:settings", "pipeline settings", "detail", ADMIN, shows=lambda w: "Matrix pipeline"),
    Case(
        "pipeline:settings_pipeline-create",
        "pipeline",
        "create",
        ADMIN,
        "POST",
        data=lambda w: {"name": "Second"},
    ),
    Case(
        "pipeline:settings_pipeline-rename",
        "pipeline",
        "update",
        ADMIN,
        "POST",
        data=lambda w: {"id": str(w.pipeline.pk), "name": "Renamed"},
    ),
    Case(
        "pipeline:settings_stage-create",
        "stage",
        "create",
        ADMIN,
        "POST",
        data=lambda w: {
            "id": str(w.pipeline.pk),
            "name": "Won-ish",
            "probability": "90",
            "rotting_days": "7",
        },
    ),
    Case(
        "pipeline:settings_stage-update",
        "stage",
        "update",
        ADMIN,
        "POST",
        data=lambda w: {"id": str(w.stages[0].pk), "name": "Lead in", "probability": "15"},
    ),
    Case(
        "pipeline:settings_stage-up",
        "stage",
        "reorder",
        ADMIN,
        "POST",
        data=lambda w: {"id": str(w.stages[1].pk)},
    ),
    Case(
        "pipeline:settings_stage-down",
        "stage",
        "reorder",
        ADMIN,
        "POST",
        data=lambda w: {"id": str(w.stages[0].pk)},
    ),
    Case(
        "pipeline:settings_stage-delete",
        "stage",
        "delete",
        ADMIN,
        "POST",
        data=lambda w: {"id": str(w.stages[2].pk)},
    ),
    Case(
        "pipeline:settings_reason-create",
        "lost reason",
        "create",
        ADMIN,
        "POST",
        data=lambda w: {"name": "Timing"},
    ),
    Case(
        "pipeline:settings_reason-update",
        "lost reason",
        "update",
        ADMIN,
        "POST",
        data=lambda w: {"id": str(w.reason.pk), "name": "Cost", "active": "on"},
    ),
    Case(
        "pipeline:settings_reason-delete",
        "lost reason",
        "delete",
        ADMIN,
        "POST",
        data=lambda w: {"id": str(w.reason.pk)},
    ),
    # --- activities (notes) and tasks
    *[
        case
        for scope, attr in (("contact", "contact"), ("company", "company"), ("deal", "deal"))
        for case in (
            Case(f"activities:{scope}", "activity", "list", ALL, kwargs=pk(attr)),
            Case(
                f"activities:{scope}_log",
                "activity",
                "create",
                SALES,
                "POST",
                kwargs=pk(attr),
                data=lambda w: {"kind": "note", "body": "Logged"},
            ),
            Case(
                f"activities:{scope}_task",
                "task",
                "create",
                SALES,
                "POST",
                kwargs=pk(attr),
                data=lambda w: {"title": "Follow up"},
            ),
        )
    ],
    Case("activities:item", "activity", "detail", ALL, kwargs=pk("activity"), shows=lambda w: "Matrix note"),
    Case(
        "activities:edit",
        "activity",
        "update",
        OWNER,
        "POST",
        kwargs=pk("activity"),
        data=lambda w: {"kind": "note", "body": "Edited note"},
    ),
    Case("activities:delete", "activity", "delete", OWNER, "POST", kwargs=pk("activity")),
    Case(
        "activities:task_toggle",
        "task",
        "update",
        OWNER,
        "POST",
        kwargs=pk("task"),
        data=lambda w: {"done": "on"},
    ),
    Case(
        "activities:task_edit",
        "task",
        "update",
        OWNER,
        "POST",
        kwargs=pk("task"),
        data=lambda w: {"title": "Edited task", "kind": "call", "priority": "high"},
    ),
    Case(
        "activities:my_day_task",
        "task",
        "create",
        SALES,
        "POST",
        data=lambda w: {"title": "From my day"},
    ),
    Case("activities:deal_options", "deal", "list", ALL, query="deal=Matrix"),
    Case(
        "pipeline:tasks",
        "task",
        "list",
        ALL,
        hides={"other": lambda w: "Matrix task", "marketing": lambda w: "Matrix task"},
    ),
    Case("activities:reports", "report", "detail", ALL),
    # --- events debugger (Admin and Marketing)
    Case("events:list", "event", "list", MANAGERS),
    Case("events:rejected", "rejected event", "list", MANAGERS),
    Case("events:dead_letters", "dead letter", "list", MANAGERS, shows=lambda w: "boom"),
    Case("events:dead_letter_retry", "dead letter", "retry", ADMIN, "POST", kwargs=pk("dead")),
    # --- sources: everyone sees them, only managers see keys and change them
    Case(
        "events:sources",
        "source",
        "list",
        ALL,
        shows=lambda w: "Matrix site",
        hides={r: (lambda w: w.source.write_key) for r in ("owner", "other")},
    ),
    Case(
        "events:source_detail",
        "source",
        "detail",
        ALL,
        kwargs=pk("source"),
        shows=lambda w: "Matrix site",
        hides={r: (lambda w: w.source.write_key) for r in ("owner", "other")},
    ),
    Case("events:source_status", "source", "detail", ALL, kwargs=pk("source")),
    Case(
        "events:source_create",
        "source",
        "create",
        MANAGERS,
        "POST",
        data=lambda w: {"name": "App", "kind": "web", "enabled": "on"},
    ),
    Case(
        "events:source_edit",
        "source",
        "update",
        MANAGERS,
        "POST",
        kwargs=pk("source"),
        data=lambda w: {"name": "Renamed site", "kind": "web", "enabled": "on"},
    ),
    Case("events:source_rotate_key", "source", "rotate key", MANAGERS, "POST", kwargs=pk("source")),
    # --- API tokens and user management (Settings)
    Case(
        "accounts:settings",
        "settings",
        "detail",
        ALL,
        hides={
            **{r: (lambda w: w.token.prefix) for r in ("admin", "other", "marketing")},
            **{r: (lambda w: "m-marketing") for r in ("owner", "other")},
        },
    ),
    Case("accounts:token_create", "API token", "create", ALL, "POST", data=lambda w: {"name": "mine"}),
    Case("accounts:token_revoke", "API token", "revoke", SELF, "POST", kwargs=pk("token")),
    Case(
        "accounts:user_create",
        "user",
        "create",
        ADMIN,
        "POST",
        data=lambda w: {"username": "newbie", "role": "Sales", "password": "a-long-enough-pass-123"},
    ),
    Case(
        "accounts:user_set_role",
        "user",
        "update",
        ADMIN,
        "POST",
        kwargs=lambda w: {"pk": w.users["other"].pk},
        data=lambda w: {"role": "Marketing"},
    ),
    Case(
        "accounts:user_set_active",
        "user",
        "update",
        ADMIN,
        "POST",
        kwargs=lambda w: {"pk": w.users["other"].pk},
        data=lambda w: {"active": "0"},
    ),
    # --- identity: the contact page's slots (whoever reads the contact), warnings, merge log
    Case(
        "identity:web_activity",
        "web activity",
        "detail",
        ALL,
        kwargs=pk("contact"),
        shows=lambda w: "/matrix-pricing",
    ),
    Case(
        "identity:web_sessions",
        "web activity",
        "list",
        ALL,
        kwargs=pk("contact"),
        query="before=2999-01-01T00:00:00%2B00:00",
        shows=lambda w: "/matrix-pricing",
    ),
    Case(
        "identity:web_events",
        "web activity",
        "list",
        ALL,
        kwargs=pk("contact"),
        shows=lambda w: "/matrix-pricing",
    ),
    Case("identity:timeline", "timeline", "list", ALL, kwargs=pk("contact"), shows=lambda w: "Matrix note"),
    Case("identity:deal_signals", "deal signal", "list", ALL, query=lambda w: f"deals={w.deal.pk}"),
    Case("identity:warnings", "identity warning", "list", ALL, shows=lambda w: "Matrix warning"),
    Case("identity:merge_list", "merge", "list", ALL, shows=lambda w: "Winnie"),
    Case("identity:merge_detail", "merge", "detail", ALL, kwargs=pk("merge"), shows=lambda w: "Winnie"),
    Case("identity:merge_split", "merge", "split", ADMIN, "POST", kwargs=pk("merge")),
    # --- identity settings: hot-deal rules and blocked values (Admin only)
    Case("identity:settings", "identity settings", "detail", ADMIN, shows=lambda w: "matrix-junk"),
    Case(
        "identity:hot_rule_create",
        "hot rule",
        "create",
        ADMIN,
        "POST",
        data=lambda w: {
            "new-name": "demo",
            "new-path_contains": "/demo",
            "new-min_views": "2",
            "new-window_hours": "24",
        },
    ),
    Case(
        "identity:hot_rule_update",
        "hot rule",
        "update",
        ADMIN,
        "POST",
        kwargs=pk("hot_rule"),
        data=lambda w: {
            f"rule{w.hot_rule.pk}-name": "matrix-warm",
            f"rule{w.hot_rule.pk}-path_contains": "/matrix",
            f"rule{w.hot_rule.pk}-min_views": "3",
            f"rule{w.hot_rule.pk}-window_hours": "48",
        },
    ),
    Case("identity:hot_rule_delete", "hot rule", "delete", ADMIN, "POST", kwargs=pk("hot_rule")),
    Case(
        "identity:blocked_value_add",
        "blocked value",
        "create",
        ADMIN,
        "POST",
        data=lambda w: {"value": "nobody-at-all", "kind": ""},
    ),
    Case("identity:blocked_value_remove", "blocked value", "delete", ADMIN, "POST", kwargs=pk("blocked")),
    # --- predictions: every role reads; Admin and Marketing change (predictions/permissions.py)
    Case("predictions:list", "prediction model", "list", ALL, shows=lambda w: "Matrix model"),
    Case(
        "predictions:detail",
        "prediction model",
        "detail",
        ALL,
        kwargs=pk("prediction_model"),
        shows=lambda w: "Matrix model",
    ),
    Case(
        "predictions:contact_panel",
        "prediction",
        "contact panel",
        ALL,
        kwargs=pk("contact"),
        shows=lambda w: "Matrix model",
    ),
    Case("predictions:create", "prediction model", "create form", MANAGERS),
    Case(
        "predictions:create",
        "prediction model",
        "create",
        MANAGERS,
        "POST",
        data=lambda w: {
            "name": "Neu model",
            "goal": "deal_won",
            "horizon_days": 30,
            "min_positives": 100,
            "min_negatives": 100,
        },
    ),
    Case("predictions:edit", "prediction model", "update form", MANAGERS, kwargs=pk("prediction_model")),
    Case(
        "predictions:edit",
        "prediction model",
        "update",
        MANAGERS,
        "POST",
        kwargs=pk("prediction_model"),
        data=lambda w: {
            "name": "Matrix model v2",
            "goal": "event",
            "event_name": "Order Completed",
            "horizon_days": 30,
            "min_positives": 100,
            "min_negatives": 100,
        },
    ),
    Case(
        "predictions:train",
        "prediction model",
        "train",
        MANAGERS,
        "POST",
        kwargs=pk("prediction_model"),
        writes=NOBODY,
    ),
    Case("predictions:delete", "prediction model", "delete", MANAGERS, "POST", kwargs=pk("prediction_model")),
    # --- scoring: every role reads; Admin and Marketing change (scoring/permissions.py)
    Case("scoring:list", "score model", "list", MANAGERS, shows=lambda w: "Matrix score"),
    Case(
        "scoring:contact_panel",
        "score",
        "contact panel",
        ALL,
        kwargs=pk("contact"),
        shows=lambda w: "Matrix score",
    ),
    Case("scoring:create", "score model", "create form", MANAGERS),
    Case(
        "scoring:create",
        "score model",
        "create",
        MANAGERS,
        "POST",
        data=lambda w: {
            "name": "Neu score",
            "enabled": "on",
            "fit_rules": '[{"label": "Any", "field": "email", "op": "is_set", "points": 3}]',
            "engagement_rules": "[]",
            "total_cap": 100,
        },
    ),
    Case("scoring:edit", "score model", "update form", MANAGERS, kwargs=pk("score_model")),
    Case(
        "scoring:edit",
        "score model",
        "update",
        MANAGERS,
        "POST",
        kwargs=pk("score_model"),
        data=lambda w: {
            "name": "Matrix score v2",
            "fit_rules": '[{"label": "Any", "field": "email", "op": "is_set", "points": 3}]',
            "engagement_rules": "[]",
            "total_cap": 50,
        },
    ),
    Case("scoring:delete", "score model", "delete", MANAGERS, "POST", kwargs=pk("score_model")),
    # --- segments: every role reads; Admin and Marketing change (segments/permissions.py)
    Case("segments:list", "segment", "list", ALL, shows=lambda w: "Matrix static"),
    Case("segments:list_slot", "segment", "list", ALL, shows=lambda w: "Matrix static"),
    Case(
        "segments:contact_panel",
        "segment",
        "list",
        ALL,
        kwargs=pk("contact"),
        shows=lambda w: "Matrix static",
    ),
    Case(
        "segments:detail",
        "segment",
        "detail",
        ALL,
        kwargs=pk("segment"),
        shows=lambda w: "Matrix audience",
        hides={
            **{r: (lambda w: w.webhook.secret) for r in ("admin", "marketing")},
            # a webhook URL can be a credential: only the roles that manage webhooks see it
            **{r: (lambda w: "matrix-hook") for r in ("owner", "other")},
        },
    ),
    Case("segments:members", "segment", "list members", ALL, kwargs=pk("segment"), shows=lambda w: "Trix"),
    Case(
        "segments:export", "segment", "export", ALL, kwargs=pk("segment"), shows=lambda w: "mara@matrix.test"
    ),
    Case(
        "segments:preview",
        "segment",
        "preview",
        ALL,
        "POST",
        data=lambda w: {"mode": "json", "definition_json": json.dumps(DEFINITION)},
        writes=NOBODY,
    ),
    Case("segments:create", "segment", "create form", MANAGERS),
    Case("segments:create", "segment", "create", MANAGERS, "POST", data=_builder_post("Neu segment")),
    Case("segments:edit", "segment", "update form", MANAGERS, kwargs=pk("segment")),
    Case(
        "segments:edit",
        "segment",
        "update",
        MANAGERS,
        "POST",
        kwargs=pk("segment"),
        data=lambda w: {"name": "Renamed", "description": "", "mode": "json", "definition_json": "{}"},
    ),
    Case("segments:delete", "segment", "delete", MANAGERS, "POST", kwargs=pk("segment")),
    # queues a refresh (a Celery message), writes nothing itself
    Case("segments:recompute", "segment", "recompute", MANAGERS, "POST", kwargs=pk("segment"), writes=NOBODY),
    Case(
        "segments:members_change",
        "segment",
        "remove members",
        MANAGERS,
        "POST",
        kwargs=pk("segment"),
        data=lambda w: {"action": "remove", "ids": [w.contact.pk]},
    ),
    Case(
        "segments:members_change",
        "segment",
        "add members",
        MANAGERS,
        "POST",
        kwargs=pk("segment"),
        data=lambda w: {"entries": "mara2@matrix.test"},
    ),
    Case(
        "segments:webhook_add",
        "webhook",
        "create",
        MANAGERS,
        "POST",
        kwargs=pk("segment"),
        data=lambda w: {"url": "https://8.8.4.4/hook", "on_enter": "on"},
    ),
    Case("segments:webhook_delete", "webhook", "delete", MANAGERS, "POST", kwargs=pk("webhook")),
    # "Send test" writes nothing; pointed at a loopback address, the SSRF guard answers at once
    # (no request leaves the machine).
    Case(
        "segments:webhook_test",
        "webhook",
        "send test",
        MANAGERS,
        "POST",
        kwargs=pk("webhook"),
        writes=frozenset(),
        setup=lambda w: Webhook.objects.filter(pk=w.webhook.pk).update(url="http://127.0.0.1:9/matrix"),
    ),
    # --- privacy: buttons for whoever reads the contact; export for Admin and the rep who may edit
    # it; erase and the erasure log for Admins
    Case("privacy:contact_actions", "privacy", "detail", ALL, kwargs=pk("contact")),
    Case(
        "privacy:contact_export",
        "person data",
        "export",
        OWNER,
        kwargs=pk("contact"),
        shows=lambda w: "/matrix-pricing",
    ),
    Case("privacy:contact_erase", "person data", "erase form", ADMIN, kwargs=pk("contact")),
    Case(
        "privacy:contact_erase",
        "person data",
        "erase",
        ADMIN,
        "POST",
        kwargs=pk("contact"),
        data=lambda w: {"confirm": "mara@matrix.test"},
    ),
    Case("privacy:erasure_list", "erasure", "list", ADMIN, shows=lambda w: w.erasure.reference),
    Case(
        "privacy:erasure_detail",
        "erasure",
        "detail",
        ADMIN,
        kwargs=pk("erasure"),
        shows=lambda w: w.erasure.reference,
    ),
    Case(
        "privacy:erasure_retry",
        "erasure",
        "retry",
        ADMIN,
        "POST",
        kwargs=pk("erasure"),
        setup=lambda w: ErasureRequest.objects.filter(pk=w.erasure.pk).update(
            status=ErasureStatus.FAILED, failure="OperationalError"
        ),
    ),
    # --- notifications: each user's own only
    Case(
        "accounts:notifications",
        "notification",
        "list",
        ALL,
        hides={r: (lambda w: "Matrix notice") for r in NOT_OWNER},
    ),
    Case("accounts:notification_bell", "notification", "count", ALL),
    # --- mail: the Unmatched inbox is each mailbox owner's own; another's message is a 404
    Case(
        "mail:unmatched",
        "unmatched email",
        "list",
        ALL,
        hides={r: (lambda w: "Matrix private mail") for r in NOT_OWNER},
    ),
    Case(
        "mail:unmatched_link",
        "unmatched email",
        "link",
        SELF,
        "POST",
        kwargs=pk("mail_copy"),
        data=lambda w: {"contact": f"Mara (#{w.contact.pk})"},
    ),
    Case(
        "mail:unmatched_create_contact",
        "unmatched email",
        "create contact",
        SELF,
        "POST",
        kwargs=pk("mail_copy"),
        data=lambda w: {"address": "stranger@elsewhere.test"},
    ),
    Case("mail:unmatched_ignore", "unmatched email", "ignore", SELF, "POST", kwargs=pk("mail_copy")),
    # compose: everyone may write from their own mailbox about a record they can read; a
    # scheduled send is its sender's to cancel
    Case(
        "mail:compose",
        "email",
        "compose form",
        ALL,
        query=lambda w: f"contact={w.contact.pk}",
        shows=lambda w: "New email to Mara",
    ),
    Case("mail:send_cancel", "scheduled email", "cancel", SELF, "POST", kwargs=pk("mail_send")),
    # connected mailboxes: each user's own (another's, an Admin's included, is a 404); the list
    # names only the user's own
    Case(
        "mail:mailboxes",
        "mailbox",
        "list",
        ALL,
        shows=lambda w: "Connected mailboxes",
        hides={r: (lambda w: "m-owner@ourco.test") for r in NOT_OWNER},
    ),
    Case("mail:mailbox_new", "mailbox", "connect form", ALL, shows=lambda w: "Test and connect"),
    Case(
        "mail:mailbox_detail",
        "mailbox",
        "detail",
        SELF,
        kwargs=pk("mailbox"),
        shows=lambda w: "m-owner@ourco.test",
        hides={r: (lambda w: "m-owner@ourco.test") for r in NOT_OWNER},
    ),
    Case("mail:mailbox_edit", "mailbox", "edit form", SELF, kwargs=pk("mailbox"), shows=lambda w: "m-owner"),
    Case(
        "mail:mailbox_folders",
        "mailbox",
        "choose folders",
        SELF,
        "POST",
        kwargs=pk("mailbox"),
        data=lambda w: {"folders": ["INBOX", "Archive"], "sync_since": "2026-01-01"},
    ),
    Case("mail:mailbox_start", "mailbox", "start import", SELF, "POST", kwargs=pk("mailbox")),
    # the world's mailbox is not started: Retry says so and writes nothing
    Case("mail:mailbox_retry", "mailbox", "retry", SELF, "POST", kwargs=pk("mailbox"), writes=NOBODY),
    Case(
        "mail:mailbox_test", "mailbox", "test connection", SELF, "POST", kwargs=pk("mailbox"), writes=NOBODY
    ),
    Case(
        "mail:mailbox_pause",
        "mailbox",
        "pause",
        SELF,
        "POST",
        kwargs=pk("mailbox"),
        data=lambda w: {"paused": "1"},
    ),
    Case("mail:mailbox_delete", "mailbox", "disconnect", SELF, "POST", kwargs=pk("mailbox")),
    # a thread and an attachment: on a record's timeline, every CRM reader's; private mail (linked
    # to nothing) its mailbox owner's alone, a 404 for everyone else, Admins included
    Case(
        "mail:thread",
        "email thread",
        "detail",
        ALL,
        kwargs=lambda w: {"pk": w.mail_linked.thread_id},
        shows=lambda w: "Matrix linked mail",
    ),
    Case(
        "mail:thread",
        "email thread",
        "detail (private)",
        SELF,
        kwargs=lambda w: {"pk": w.mail_message.thread_id},
        shows=lambda w: "Matrix private mail",
        hides={r: (lambda w: "Matrix private mail") for r in NOT_OWNER},
    ),
    Case(
        "mail:attachment",
        "email attachment",
        "download",
        ALL,
        kwargs=pk("mail_linked_attachment"),
        shows=lambda w: "matrix linked bytes",
    ),
    Case(
        "mail:attachment",
        "email attachment",
        "download (private)",
        SELF,
        kwargs=pk("mail_attachment"),
        shows=lambda w: "matrix private bytes",
        hides={r: (lambda w: "matrix private bytes") for r in NOT_OWNER},
    ),
    # the never-log list: everyone keeps a personal one; the workspace's is the Admins'
    Case(
        "mail:never_log",
        "never-log entry",
        "list",
        ALL,
        shows=lambda w: "matrix-legal.test",
        hides={r: (lambda w: "owner-private.test") for r in NOT_OWNER},
    ),
    Case(
        "mail:never_log_add", "never-log entry", "create", ALL, "POST", data=lambda w: {"value": "new.test"}
    ),
    Case(
        "mail:never_log_add_workspace",
        "never-log entry",
        "create for everyone",
        ADMIN,
        "POST",
        data=lambda w: {"value": "everyone.test"},
    ),
    Case("mail:never_log_remove", "never-log entry", "delete", SELF, "POST", kwargs=pk("never_log_own")),
    Case(
        "mail:never_log_remove",
        "never-log entry",
        "delete for everyone",
        ADMIN,
        "POST",
        kwargs=pk("never_log_workspace"),
    ),
    # email templates: a personal one is its owner's alone (404 for anyone else, Admins included);
    # a shared one every user may use, preview and duplicate, its owner or an Admin edit (403)
    Case(
        "mail:email_templates",
        "email template",
        "list",
        ALL,
        shows=lambda w: "Matrix shared template",
        hides={r: (lambda w: "Matrix personal template") for r in NOT_OWNER},
    ),
    Case(
        "mail:email_template_new", "email template", "create form", ALL, shows=lambda w: "contact.first_name"
    ),
    Case(
        "mail:email_template_new",
        "email template",
        "create",
        ALL,
        "POST",
        data=lambda w: {"name": "New", "subject": "Hi {{ contact.first_name }}", "body": "Hello"},
    ),
    Case(
        "mail:email_template_edit",
        "email template",
        "edit form",
        SELF,
        kwargs=pk("template_personal"),
        shows=lambda w: "Matrix personal template",
        hides={r: (lambda w: "Matrix personal template") for r in NOT_OWNER},
    ),
    Case(
        "mail:email_template_edit",
        "email template",
        "edit form (shared)",
        OWNER,
        kwargs=pk("template_shared"),
        shows=lambda w: "Matrix shared template",
    ),
    Case(
        "mail:email_template_edit",
        "email template",
        "update",
        SELF,
        "POST",
        kwargs=pk("template_personal"),
        data=lambda w: {"name": "Renamed", "subject": "S", "body": "B"},
    ),
    Case(
        "mail:email_template_edit",
        "email template",
        "update (shared)",
        OWNER,
        "POST",
        kwargs=pk("template_shared"),
        data=lambda w: {"name": "Renamed", "subject": "S", "body": "B", "shared": "on"},
    ),
    Case(
        "mail:email_template_delete",
        "email template",
        "delete",
        SELF,
        "POST",
        kwargs=pk("template_personal"),
    ),
    Case(
        "mail:email_template_delete",
        "email template",
        "delete (shared)",
        OWNER,
        "POST",
        kwargs=pk("template_shared"),
    ),
    Case(
        "mail:email_template_duplicate",
        "email template",
        "duplicate",
        SELF,
        "POST",
        kwargs=pk("template_personal"),
    ),
    Case(
        "mail:email_template_duplicate",
        "email template",
        "duplicate (shared)",
        ALL,
        "POST",
        kwargs=pk("template_shared"),
    ),
    Case(
        "mail:email_template_preview",
        "email template",
        "preview",
        SELF,
        kwargs=pk("template_personal"),
        query=lambda w: f"contact=Mara+(%23{w.contact.pk})",
        shows=lambda w: "Hi Mara",
        hides={r: (lambda w: "Matrix personal template") for r in NOT_OWNER},
    ),
    Case(
        "mail:email_template_preview",
        "email template",
        "preview (shared)",
        ALL,
        kwargs=pk("template_shared"),
        query=lambda w: f"contact=Mara+(%23{w.contact.pk})",
        shows=lambda w: "Hi Mara",
    ),
    # opening another user's notification is a 404 and never marks it read
    Case("accounts:notification_open", "notification", "open", SELF, "POST", kwargs=pk("notification")),
    # marking another user's notification read answers like any mark-read, and changes nothing
    Case(
        "accounts:notification_read",
        "notification",
        "mark read",
        ALL,
        "POST",
        kwargs=pk("notification"),
        writes=SELF,
    ),
    Case(
        "accounts:notification_read_all",
        "notification",
        "mark all read",
        ALL,
        "POST",
        writes=SELF,
        hides={r: (lambda w: "Matrix notice") for r in NOT_OWNER},
        headers=HTMX,
    ),
    Case(
        "accounts:notification_preferences",
        "notification preferences",
        "update",
        ALL,
        "POST",
        data=lambda w: {"email_notifications": "on"},
    ),
    # --- pages over everything
    Case("home", "dashboard", "detail", ALL),
    Case("search", "search", "list", ALL, query="q=Mara", shows=lambda w: "Trix"),
    Case("api-docs", "API docs", "detail", ALL),
    # --- the REST API (token auth)
    Case("api-root", "API", "detail", ALL, api=True),
    Case("api-me", "user", "detail", ALL, api=True),
    Case("api-schema", "API", "detail", ALL, api=True),
    Case("api-contacts", "contact", "list", ALL, api=True, shows=lambda w: "mara@matrix.test"),
    Case("api-contacts", "contact", "create", SALES, "POST", api=True, data=lambda w: {"first_name": "Api"}),
    Case(
        "api-contact-detail",
        "contact",
        "detail",
        ALL,
        api=True,
        kwargs=pk("contact"),
        shows=lambda w: "mara@matrix.test",
    ),
    Case(
        "api-contact-detail",
        "contact",
        "update",
        OWNER,
        "PATCH",
        api=True,
        kwargs=pk("contact"),
        data=lambda w: {"first_name": "Api"},
    ),
    Case("api-contact-detail", "contact", "delete", OWNER, "DELETE", api=True, kwargs=pk("contact")),
    Case("api-companies", "company", "list", ALL, api=True, shows=lambda w: "Matrix Co"),
    Case("api-companies", "company", "create", SALES, "POST", api=True, data=lambda w: {"name": "ApiCo"}),
    Case(
        "api-company-detail",
        "company",
        "detail",
        ALL,
        api=True,
        kwargs=pk("company"),
        shows=lambda w: "Matrix Co",
    ),
    Case(
        "api-company-detail",
        "company",
        "update",
        OWNER,
        "PATCH",
        api=True,
        kwargs=pk("company"),
        data=lambda w: {"industry": "Rockets"},
    ),
    Case("api-company-detail", "company", "delete", OWNER, "DELETE", api=True, kwargs=pk("company")),
    Case("api-pipelines", "pipeline", "list", ALL, api=True, shows=lambda w: "Matrix pipeline"),
    Case("api-pipelines", "pipeline", "create", ADMIN, "POST", api=True, data=lambda w: {"name": "Api pipe"}),
    Case(
        "api-pipeline-detail",
        "pipeline",
        "detail",
        ALL,
        api=True,
        kwargs=pk("pipeline"),
        shows=lambda w: "Matrix pipeline",
    ),
    Case(
        "api-pipeline-detail",
        "pipeline",
        "update",
        ADMIN,
        "PATCH",
        api=True,
        kwargs=pk("pipeline"),
        data=lambda w: {"name": "Api renamed"},
    ),
    Case("api-pipeline-detail", "pipeline", "delete", ADMIN, "DELETE", api=True, kwargs=pk("spare_pipeline")),
    Case(
        "api-pipeline-stages", "stage", "list", ALL, api=True, kwargs=pk("pipeline"), shows=lambda w: "Empty"
    ),
    Case(
        "api-pipeline-stages",
        "stage",
        "create",
        ADMIN,
        "POST",
        api=True,
        kwargs=pk("pipeline"),
        data=lambda w: {"name": "Api stage", "probability": 90},
    ),
    Case(
        "api-pipeline-stage-order",
        "stage",
        "reorder",
        ADMIN,
        "PUT",
        api=True,
        kwargs=pk("pipeline"),
        data=lambda w: {"stages": [s.pk for s in reversed(w.stages)]},
    ),
    Case(
        "api-stage-detail",
        "stage",
        "detail",
        ALL,
        api=True,
        kwargs=lambda w: {"pk": w.stages[1].pk},
        shows=lambda w: '"name":"Demo"',
    ),
    Case(
        "api-stage-detail",
        "stage",
        "update",
        ADMIN,
        "PATCH",
        api=True,
        kwargs=lambda w: {"pk": w.stages[1].pk},
        data=lambda w: {"probability": 45},
    ),
    Case(
        "api-stage-detail",
        "stage",
        "delete",
        ADMIN,
        "DELETE",
        api=True,
        kwargs=lambda w: {"pk": w.stages[2].pk},
    ),
    Case(
        "api-stage-detail",
        "stage",
        "delete moving its deals",
        ADMIN,
        "DELETE",
        api=True,
        kwargs=lambda w: {"pk": w.stages[0].pk},
        query=lambda w: f"move_deals_to={w.stages[1].pk}",
    ),
    Case("api-deals", "deal", "list", ALL, api=True, shows=lambda w: "Matrix deal"),
    Case(
        "api-deals",
        "deal",
        "create",
        SALES,
        "POST",
        api=True,
        data=lambda w: {"title": "Api deal", "stage": w.stages[0].pk},
    ),
    Case(
        "api-deal-detail", "deal", "detail", ALL, api=True, kwargs=pk("deal"), shows=lambda w: "Matrix deal"
    ),
    Case(
        "api-deal-detail",
        "deal",
        "update",
        OWNER,
        "PATCH",
        api=True,
        kwargs=pk("deal"),
        data=lambda w: {"title": "Api edit"},
    ),
    Case("api-sources", "source", "list", MANAGERS, api=True, shows=lambda w: w.source.write_key),
    Case("api-source-privacy", "source", "detail", MANAGERS, api=True, kwargs=pk("source")),
    Case(
        "api-source-privacy",
        "source",
        "update",
        MANAGERS,
        "PATCH",
        api=True,
        kwargs=pk("source"),
        data=lambda w: {"retention_days": 30},
    ),
    Case("api-activities", "activity", "list", ALL, api=True, shows=lambda w: "Matrix note"),
    Case(
        "api-activities",
        "activity",
        "create",
        SALES,
        "POST",
        api=True,
        data=lambda w: {"kind": "note", "body": "Api note", "contact": w.contact.pk},
    ),
    Case(
        "api-activity-detail",
        "activity",
        "detail",
        ALL,
        api=True,
        kwargs=pk("activity"),
        shows=lambda w: "Matrix note",
    ),
    Case(
        "api-activity-detail",
        "activity",
        "update",
        OWNER,
        "PATCH",
        api=True,
        kwargs=pk("activity"),
        data=lambda w: {"body": "Api edit"},
    ),
    Case("api-activity-detail", "activity", "delete", OWNER, "DELETE", api=True, kwargs=pk("activity")),
    Case("api-tasks", "task", "list", ALL, api=True),
    Case(
        "api-tasks",
        "task",
        "create",
        SALES,
        "POST",
        api=True,
        data=lambda w: {"title": "Api task", "contact": w.contact.pk},
    ),
    Case(
        "api-task-detail", "task", "detail", ALL, api=True, kwargs=pk("task"), shows=lambda w: "Matrix task"
    ),
    Case(
        "api-task-detail",
        "task",
        "update",
        OWNER,
        "PATCH",
        api=True,
        kwargs=pk("task"),
        data=lambda w: {"title": "Api edit"},
    ),
    Case("api-task-detail", "task", "delete", OWNER, "DELETE", api=True, kwargs=pk("task")),
    # --- identity API
    Case(
        "api-contact-events",
        "web activity",
        "list",
        ALL,
        api=True,
        kwargs=pk("contact"),
        shows=lambda w: "/matrix-pricing",
    ),
    Case(
        "api-contact-identities",
        "identity",
        "list",
        ALL,
        api=True,
        kwargs=pk("contact"),
        shows=lambda w: "mara@matrix.test",
    ),
    Case(
        "api-identity-merges", "merge", "list", ALL, api=True, shows=lambda w: f'"loser":{w.merge.loser_id}'
    ),
    Case(
        "api-identity-merge-detail",
        "merge",
        "detail",
        ALL,
        api=True,
        kwargs=pk("merge"),
        shows=lambda w: f'"loser":{w.merge.loser_id}',
    ),
    Case("api-identity-merge-split", "merge", "split", ADMIN, "POST", api=True, kwargs=pk("merge")),
    # --- predictions API
    Case("api-prediction-models", "prediction model", "list", ALL, api=True, shows=lambda w: "Matrix model"),
    Case(
        "api-prediction-models",
        "prediction model",
        "create",
        MANAGERS,
        "POST",
        api=True,
        data=lambda w: {"name": "Api model", "goal": "deal_won"},
    ),
    Case(
        "api-prediction-model-detail",
        "prediction model",
        "detail",
        ALL,
        api=True,
        kwargs=pk("prediction_model"),
        shows=lambda w: "Matrix model",
    ),
    Case(
        "api-prediction-model-detail",
        "prediction model",
        "update",
        MANAGERS,
        "PATCH",
        api=True,
        kwargs=pk("prediction_model"),
        data=lambda w: {"name": "Api edit"},
    ),
    Case(
        "api-prediction-model-detail",
        "prediction model",
        "delete",
        MANAGERS,
        "DELETE",
        api=True,
        kwargs=pk("prediction_model"),
    ),
    Case(
        "api-prediction-model-train",
        "prediction model",
        "train",
        MANAGERS,
        "POST",
        api=True,
        kwargs=pk("prediction_model"),
        writes=NOBODY,
    ),
    Case(
        "api-contact-predictions",
        "prediction",
        "list of a contact",
        ALL,
        api=True,
        kwargs=pk("contact"),
        shows=lambda w: "Matrix model",
    ),
    # --- scoring API
    Case("api-score-models", "score model", "list", ALL, api=True, shows=lambda w: "Matrix score"),
    Case(
        "api-score-models",
        "score model",
        "create",
        MANAGERS,
        "POST",
        api=True,
        data=lambda w: {
            "name": "Api score",
            "fit_rules": [{"label": "Any", "field": "email", "op": "is_set", "points": 3}],
        },
    ),
    Case(
        "api-score-model-detail",
        "score model",
        "detail",
        ALL,
        api=True,
        kwargs=pk("score_model"),
        shows=lambda w: "Matrix score",
    ),
    Case(
        "api-score-model-detail",
        "score model",
        "update",
        MANAGERS,
        "PATCH",
        api=True,
        kwargs=pk("score_model"),
        data=lambda w: {"name": "Api score edit"},
    ),
    Case(
        "api-score-model-detail",
        "score model",
        "delete",
        MANAGERS,
        "DELETE",
        api=True,
        kwargs=pk("score_model"),
    ),
    Case(
        "api-contact-scores",
        "score",
        "list of a contact",
        ALL,
        api=True,
        kwargs=pk("contact"),
        shows=lambda w: "Matrix score",
    ),
    # --- traits: every role reads values; Admin and Marketing define traits (traits/permissions.py)
    Case("traits:list", "trait", "list", MANAGERS, shows=lambda w: "Matrix orders"),
    Case("traits:create", "trait", "create form", MANAGERS),
    Case(
        "traits:create",
        "trait",
        "create",
        MANAGERS,
        "POST",
        data=lambda w: {"name": "Neu", "key": "neu", "kind": "count"},
    ),
    Case("traits:edit", "trait", "update form", MANAGERS, kwargs=pk("trait")),
    Case(
        "traits:edit",
        "trait",
        "update",
        MANAGERS,
        "POST",
        kwargs=pk("trait"),
        data=lambda w: {"name": "Renamed", "key": "matrix_orders", "kind": "count"},
    ),
    Case("traits:delete", "trait", "delete", MANAGERS, "POST", kwargs=pk("account_trait")),
    # queues a recompute (a Celery message), writes nothing itself
    Case("traits:recompute", "trait", "recompute", MANAGERS, "POST", kwargs=pk("trait"), writes=NOBODY),
    Case(
        "traits:contact_panel", "trait", "values", ALL, kwargs=pk("contact"), shows=lambda w: "Matrix orders"
    ),
    Case(
        "traits:company_panel", "trait", "values", ALL, kwargs=pk("company"), shows=lambda w: "Matrix buyers"
    ),
    Case("api-traits", "trait", "list", ALL, api=True, shows=lambda w: "matrix_orders"),
    Case(
        "api-traits",
        "trait",
        "create",
        MANAGERS,
        "POST",
        api=True,
        data=lambda w: {"key": "api_trait", "name": "Api", "kind": "count"},
    ),
    Case(
        "api-trait-detail",
        "trait",
        "detail",
        ALL,
        api=True,
        kwargs=pk("trait"),
        shows=lambda w: "matrix_orders",
    ),
    Case(
        "api-trait-detail",
        "trait",
        "update",
        MANAGERS,
        "PATCH",
        api=True,
        kwargs=pk("trait"),
        data=lambda w: {"name": "Api edit"},
    ),
    Case("api-trait-detail", "trait", "delete", MANAGERS, "DELETE", api=True, kwargs=pk("account_trait")),
    Case(
        "api-contact-traits",
        "trait",
        "values",
        ALL,
        api=True,
        kwargs=pk("contact"),
        shows=lambda w: "matrix_orders",
    ),
    Case(
        "api-company-traits",
        "trait",
        "values",
        ALL,
        api=True,
        kwargs=pk("company"),
        shows=lambda w: "matrix_buyers",
    ),
    # --- segments API
    Case("api-segments", "segment", "list", ALL, api=True, shows=lambda w: "Matrix static"),
    Case(
        "api-segments",
        "segment",
        "create",
        MANAGERS,
        "POST",
        api=True,
        data=lambda w: {"name": "Api segment", "definition": DEFINITION},
    ),
    Case(
        "api-segment-detail",
        "segment",
        "detail",
        ALL,
        api=True,
        kwargs=pk("segment"),
        shows=lambda w: "Matrix audience",
    ),
    Case(
        "api-segment-detail",
        "segment",
        "update",
        MANAGERS,
        "PATCH",
        api=True,
        kwargs=pk("segment"),
        data=lambda w: {"description": "Api edit"},
    ),
    Case("api-segment-detail", "segment", "delete", MANAGERS, "DELETE", api=True, kwargs=pk("segment")),
    Case(
        "api-segment-members",
        "segment",
        "list members",
        ALL,
        api=True,
        kwargs=pk("segment"),
        shows=lambda w: "mara@matrix.test",
    ),
    Case(
        "api-segment-preview",
        "segment",
        "preview",
        ALL,
        "POST",
        api=True,
        data=lambda w: {"definition": DEFINITION},
        writes=NOBODY,
    ),
    Case(
        "api-segment-webhooks",
        "webhook",
        "list",
        MANAGERS,
        api=True,
        kwargs=pk("segment"),
        shows=lambda w: w.webhook.url,
        hides={r: (lambda w: w.webhook.secret) for r in ("admin", "owner", "other", "marketing")},
    ),
    Case(
        "api-segment-webhooks",
        "webhook",
        "create",
        MANAGERS,
        "POST",
        api=True,
        kwargs=pk("segment"),
        data=lambda w: {"url": "https://8.8.4.4/hook"},
    ),
    Case(
        "api-segment-webhook-detail", "webhook", "delete", MANAGERS, "DELETE", api=True, kwargs=pk("webhook")
    ),
    Case(
        "api-segment-deliveries",
        "webhook delivery",
        "list",
        MANAGERS,
        api=True,
        kwargs=pk("segment"),
        shows=lambda w: "matrix-delivery",
    ),
    # --- privacy API
    Case(
        "api-contact-export",
        "person data",
        "export",
        OWNER,
        api=True,
        kwargs=pk("contact"),
        shows=lambda w: "/matrix-pricing",
    ),
    Case("api-contact-erase", "person data", "erase", ADMIN, "POST", api=True, kwargs=pk("contact")),
    Case(
        "api-erasure-detail",
        "erasure",
        "detail",
        ADMIN,
        api=True,
        kwargs=pk("erasure"),
        shows=lambda w: w.erasure.reference,
    ),
    # --- mail API: a record's email is every CRM reader's; private mail (linked to nothing) its
    # mailbox owner's alone, a 404 for everyone else, Admins included
    Case(
        "api-contact-emails",
        "email",
        "list of a contact",
        ALL,
        api=True,
        kwargs=pk("contact"),
        shows=lambda w: "Matrix linked mail",
        hides={r: (lambda w: "Matrix private mail") for r in ROLES},
    ),
    Case("api-company-emails", "email", "list of a company", ALL, api=True, kwargs=pk("company")),
    Case("api-deal-emails", "email", "list of a deal", ALL, api=True, kwargs=pk("deal")),
    Case(
        "api-email-detail",
        "email",
        "detail",
        ALL,
        api=True,
        kwargs=pk("mail_linked"),
        shows=lambda w: "matrix-linked.pdf",
    ),
    Case(
        "api-email-detail",
        "email",
        "detail (private)",
        SELF,
        api=True,
        kwargs=pk("mail_message"),
        shows=lambda w: "matrix-private.pdf",
        hides={r: (lambda w: "Matrix private mail") for r in NOT_OWNER},
    ),
    # sending: through the caller's own mailbox only (the world's is the rep "owner"'s); the send is
    # written, its delivery queued after a commit that the test's rollback never reaches
    Case(
        "api-email-send",
        "email",
        "send",
        SELF,
        "POST",
        api=True,
        setup=lambda w: Mailbox.objects.filter(pk=w.mailbox.pk).update(smtp_host="127.0.0.1", smtp_port=9),
        data=lambda w: {
            "to": ["mara@matrix.test"],
            "subject": "Matrix send",
            "body_text": "Hello",
            "contact": w.contact.pk,
        },
    ),
    # templates: a personal one is its owner's; a shared one every user's, edited by its owner or
    # an Admin
    Case(
        "api-email-templates",
        "email template",
        "list",
        ALL,
        api=True,
        setup=lambda w: (_mail_template(w), _mail_template(w, shared=False)),
        shows=lambda w: "Matrix shared template",
        hides={r: (lambda w: "Matrix personal template") for r in NOT_OWNER},
    ),
    Case(
        "api-email-templates",
        "email template",
        "create",
        ALL,
        "POST",
        api=True,
        data=lambda w: {"name": "Api template", "subject": "Hi", "body": "<p>Hi {{ sender.first_name }}</p>"},
    ),
    Case(
        "api-email-template-detail",
        "email template",
        "detail",
        ALL,
        api=True,
        kwargs=lambda w: {"pk": _mail_template(w).pk},
        shows=lambda w: "Matrix shared template",
    ),
    Case(
        "api-email-template-detail",
        "email template",
        "detail (private)",
        SELF,
        api=True,
        kwargs=lambda w: {"pk": _mail_template(w, shared=False).pk},
        shows=lambda w: "Matrix personal template",
        hides={r: (lambda w: "Matrix personal template") for r in NOT_OWNER},
    ),
    Case(
        "api-email-template-detail",
        "email template",
        "update",
        OWNER,
        "PATCH",
        api=True,
        kwargs=lambda w: {"pk": _mail_template(w).pk},
        data=lambda w: {"name": "Api edit"},
    ),
    Case(
        "api-email-template-detail",
        "email template",
        "update (private)",
        SELF,
        "PATCH",
        api=True,
        kwargs=lambda w: {"pk": _mail_template(w, shared=False).pk},
        data=lambda w: {"name": "Api edit"},
    ),
    Case(
        "api-email-template-detail",
        "email template",
        "delete",
        OWNER,
        "DELETE",
        api=True,
        kwargs=lambda w: {"pk": _mail_template(w).pk},
    ),
]

# Reachable without a login by design (their own tests cover what they answer).
# The email open pixel and click redirect are reached from recipients' mail clients (anonymous by
# nature); they take an unguessable token and reveal nothing (tests/mail/test_tracking.py).
PUBLIC = {
    "login", "healthz", "track-api", "events:cdp_js", "events:segment_settings",
    "mail_tracking:open", "mail_tracking:click",
}  # fmt: skip
# About the signed-in user only, the same for every role: nothing of anyone else to reach.
SELF_SERVICE = {"logout", "password_change", "password_change_done"}

# Columns that a request may touch without writing anything a user did: the login stamp, the
# token's last use (written at most once a minute by the API authentication).
VOLATILE = {"last_login", "last_used_at"}
FINGERPRINT_APPS = (
    "accounts",
    "contacts",
    "pipeline",
    "events",
    "identity",
    "segments",
    "predictions",
    "scoring",
    "traits",
    "privacy",
    "mail",
)


def _fingerprint_query() -> sql.Composed:
    """One statement: per table, an md5 over its rows as JSON (volatile columns removed)."""
    # RecentView is bookkeeping of what a user opened (detail pages stamp it), not CRM data: reading
    # a record is still read-only.
    models = [
        m
        for m in apps.get_models(include_auto_created=True)
        if m._meta.app_label in FINGERPRINT_APPS and m._meta.label != "accounts.RecentView"
    ]
    models += [apps.get_model("auth", "User"), apps.get_model("auth", "User").groups.through]
    strip = sql.SQL("").join(sql.SQL(" - {}").format(sql.Literal(column)) for column in sorted(VOLATILE))
    parts = [
        sql.SQL(
            "(SELECT md5(coalesce(string_agg((to_jsonb(t){strip})::text, ',' ORDER BY t.{pk}), ''))"
            " FROM {table} t)"
        ).format(
            strip=strip, pk=sql.Identifier(model._meta.pk.column), table=sql.Identifier(model._meta.db_table)
        )
        for model in sorted(models, key=lambda m: m._meta.db_table)
    ]
    return sql.SQL("SELECT concat_ws('|', {})").format(sql.SQL(", ").join(parts))


_FINGERPRINT_SQL: list[str] = []  # the statement, composed once per process (the tables do not change)


def fingerprint() -> str:
    """A digest of every row of every project table (and users and their groups), in one query."""
    with connection.cursor() as cursor:
        if not _FINGERPRINT_SQL:
            _FINGERPRINT_SQL.append(_fingerprint_query().as_string(cursor.connection))
        cursor.execute(_FINGERPRINT_SQL[0])
        return hashlib.sha256(cursor.fetchone()[0].encode()).hexdigest()


def _body(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode(errors="replace")
    return response.content.decode(errors="replace")


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, tmp_path_factory):
    """Built once for the ~600 requests (committed); each test's writes roll back with its
    transaction, and the rows are flushed when the module is done, as transactional tests do."""
    from django.core.management import call_command
    from django.test import Client, override_settings

    with override_settings(MEDIA_ROOT=str(tmp_path_factory.mktemp("media"))), django_db_blocker.unblock():
        built = World()
        # A signed-in session per role, committed with the world: each test sends its cookie
        # instead of logging in again (a login writes the session row and the user's last_login,
        # ~600 times). What a request does to its session (logout, a password change) rolls back
        # with its test, as every other write does.
        built.sessions = {}
        for role, user in built.users.items():
            signed_in = Client()
            signed_in.force_login(user)
            built.sessions[role] = signed_in.cookies[settings.SESSION_COOKIE_NAME].value
        yield built
        call_command("flush", interactive=False, verbosity=0)
        migrated_rows_restore()


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_matrix(client, world: World, case: Case, role: str):
    if case.setup:
        case.setup(world)
    query = case.query(world) if callable(case.query) else case.query
    url = reverse(case.name, kwargs=case.kwargs(world)) + (f"?{query}" if query else "")
    headers = dict(case.headers)
    if case.api:
        if role != "anon":
            headers["Authorization"] = f"Token {world.api_tokens[role]}"
    elif role != "anon":
        client.cookies[settings.SESSION_COOKIE_NAME] = world.sessions[role]
    before = fingerprint()
    data = case.data(world)
    if case.method == "GET":
        response = client.get(url, headers=headers)
    elif case.method == "POST":
        response = client.post(
            url, data, headers=headers, **({"content_type": "application/json"} if case.api else {})
        )
    else:
        response = client.generic(
            case.method, url, json.dumps(data), content_type="application/json", headers=headers
        )
    body = _body(response)
    after = fingerprint()
    status = response.status_code

    if role == "anon":
        if case.api:
            assert status == 401, (status, body[:300])
        else:
            assert status == 302 and response["Location"].startswith(reverse("login") + "?next="), status
    elif role in case.ok:
        assert status in (200, 201, 202, 204, 302), (status, body[:500])
        if status == 302:
            assert not response["Location"].startswith(reverse("login")), response["Location"]
        if case.shows and case.method == "GET":
            assert case.shows(world) in body, f"{role} should see {case.shows(world)!r}"
    else:
        assert status in (403, 404), (status, body[:300])
    if role in case.hides:
        assert case.hides[role](world) not in body, f"{role} must not see {case.hides[role](world)!r}"

    if role in case.writers:
        assert after != before, f"{role}'s {case.action} was accepted but wrote nothing"
    else:
        assert after == before, f"{role}'s refused or read-only request changed the database"


REFUSED_WRITES = [
    (case, role)
    for case in CASES
    if case.method != "GET"
    for role in ("other", "marketing")
    if role not in case.ok
]


@pytest.mark.parametrize(("case", "role"), REFUSED_WRITES, ids=lambda v: v.id if isinstance(v, Case) else v)
def test_a_refused_write_is_refused_whatever_its_input(client, world: World, case: Case, role: str):
    """Permission comes before validation: a role that may not write gets 403/404 for an empty or
    malformed body too, never a form error or a redirect that tells it about the data."""
    url = reverse(case.name, kwargs=case.kwargs(world))
    headers = {"Authorization": f"Token {world.api_tokens[role]}"} if case.api else {}
    if not case.api:
        client.cookies[settings.SESSION_COOKIE_NAME] = world.sessions[role]
    before = fingerprint()
    for body in ({}, {"name": "", "title": "", "add": "nobody", "id": "x", "stage": "x"}):
        if case.api:
            response = client.generic(case.method, url, json.dumps(body), "application/json", headers=headers)
        else:
            response = client.post(url, body, headers=case.headers)
        assert response.status_code in (403, 404), (response.status_code, body)
    assert fingerprint() == before


def _url_names(resolver=None, namespace=""):
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from _url_names(pattern, inner)
        elif isinstance(pattern, URLPattern):
            yield (f"{namespace}{pattern.name}", str(pattern.pattern))


def test_every_url_pattern_is_in_the_matrix():
    covered = {case.name for case in CASES}
    missing = sorted(
        f"{name} ({route})"
        for name, route in _url_names()
        if name not in covered | PUBLIC | SELF_SERVICE and name != "bench-ok"
    )
    assert missing == [], f"URL patterns with no entry in the permission matrix: {missing}"
    stale = covered - {name for name, _ in _url_names()}
    assert stale == set(), f"matrix entries for URL names that no longer exist: {stale}"


def test_the_matrix_is_what_it_claims_to_be():
    """The table spans the objects and actions of the brief, for both the pages and the API."""
    objects = {case.obj for case in CASES}
    for obj in ("contact", "company", "deal", "activity", "task", "custom field", "saved view", "import job"):
        assert obj in objects
    for obj in ("API token", "source", "user"):
        assert obj in objects
    for obj in ("web activity", "identity", "merge", "hot rule", "blocked value", "segment", "webhook"):
        assert obj in objects
    for obj in ("person data", "erasure", "notification", "notification preferences"):
        assert obj in objects
    actions = {case.action for case in CASES}
    assert {"list", "detail", "create", "update", "delete", "bulk delete", "export", "merge"} <= actions
    assert {"split", "erase", "recompute", "preview", "open", "mark read"} <= actions
    assert sum(case.api for case in CASES) >= 20 and sum(not case.api for case in CASES) >= 80
    assert len(CASES) * len(ROLES) >= 500
