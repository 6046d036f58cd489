"""Rep email: connected mailboxes, the messages synced from them or sent through them, and what
each message is linked to (docs/architecture.md, "Rep email").

One message is one row however many mailboxes or folders hold it: `EmailMessage.message_key` (the
normalised Message-ID, or a digest of the headers when a message has none) is unique, and each
mailbox's copy is a `MailboxMessage` (folder, UID, direction). Every send, open, click and reply
is also an event in the CDP event log on the contact (mail.services.events), so segments, scores
and insights read email like page views; these tables hold what the timeline shows.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from contacts.models import Company, Contact
from pipeline.models import Deal


class Security(models.TextChoices):
    SSL = "ssl", "SSL/TLS"
    STARTTLS = "starttls", "STARTTLS"
    # Plain text: for a server on localhost or a trusted network only (the form says so).
    NONE = "none", "None (unencrypted)"


class MailboxKind(models.TextChoices):
    # A rep's own inbox: synced folders, sends through its SMTP.
    PERSONAL = "personal", "Personal mailbox"
    # The workspace BCC / forwarding address: polled over IMAP; the sender must be a user.
    DROPBOX = "dropbox", "BCC / forwarding dropbox"


class AuthMethod(models.TextChoices):
    # The one built today. OAuth (Gmail, Microsoft 365) plugs in as another method whose
    # credential is a refresh token: mail.services.auth chooses the IMAP/SMTP login step by it.
    PASSWORD = "password", "Password / app password"


class UnknownAddressPolicy(models.TextChoices):
    # Twenty's default and HubSpot's beta: mail the rep sent creates contacts for new recipients.
    SENT = "sent", "Create contacts for people I email"
    ALL = "all", "Create contacts for everyone (sent and received)"
    NEVER = "never", "Never create contacts"


class SyncState(models.TextChoices):
    NEW = "new", "Not synced yet"
    ACTIVE = "active", "Syncing"
    PAUSED = "paused", "Paused"
    FAILING = "failing", "Failing"


class Mailbox(models.Model):
    kind = models.CharField(max_length=10, choices=MailboxKind.choices, default=MailboxKind.PERSONAL)
    # The rep who connected it (a dropbox belongs to the workspace: no owner).
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    email_address = models.EmailField()
    display_name = models.CharField(max_length=200, blank=True)
    imap_host = models.CharField(max_length=255)
    imap_port = models.PositiveIntegerField(default=993)
    imap_security = models.CharField(max_length=10, choices=Security.choices, default=Security.SSL)
    smtp_host = models.CharField(max_length=255, blank=True)
    smtp_port = models.PositiveIntegerField(default=465)
    smtp_security = models.CharField(max_length=10, choices=Security.choices, default=Security.SSL)
    username = models.CharField(max_length=255)
    auth_method = models.CharField(max_length=20, choices=AuthMethod.choices, default=AuthMethod.PASSWORD)
    # The app password (or, later, an OAuth refresh token), Fernet-encrypted with
    # settings.MAIL_ENCRYPTION_KEYS (mail.crypto). Never shown back, never logged, never exported.
    secret_encrypted = models.TextField(blank=True)
    # Folders to sync, by name (INBOX and the Sent folder by default; the user picks).
    folders = models.JSONField(default=list, blank=True)
    # Mail older than this is not imported (a dry-run count is shown before the first import).
    sync_since = models.DateField(null=True, blank=True)
    sync_state = models.CharField(max_length=10, choices=SyncState.choices, default=SyncState.NEW)
    unknown_policy = models.CharField(
        max_length=10, choices=UnknownAddressPolicy.choices, default=UnknownAddressPolicy.SENT
    )
    # HubSpot's default cap for a connected inbox: 1,000 sends per rolling 24 h.
    daily_send_cap = models.PositiveIntegerField(default=1000)
    # Open deals of a matched contact a message is linked to (HubSpot: the 5 most recent).
    deal_link_limit = models.PositiveSmallIntegerField(default=5)
    # Attachments larger than this are not kept (the message is; the timeline says why).
    attachment_max_bytes = models.PositiveIntegerField(default=25 * 1024 * 1024)
    track_by_default = models.BooleanField(default=False)
    # Sync health, shown on Settings → Email: honest about a sync that imported nothing.
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    imported_total = models.PositiveBigIntegerField(default=0)
    # What the last successful run imported (health says "0 new" rather than a bare "synced").
    last_imported = models.PositiveIntegerField(default=0)
    # A run holds the mailbox until this time (mail.services.sync): a second run (beat and the
    # Retry button at once, two workers) finds it held and leaves; a killed run's lease expires.
    sync_lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["email_address", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "email_address"],
                condition=Q(kind=MailboxKind.PERSONAL),
                name="mailbox_one_per_owner_and_address",
            ),
            models.UniqueConstraint(
                fields=["kind"], condition=Q(kind=MailboxKind.DROPBOX), name="mailbox_one_dropbox"
            ),
            models.CheckConstraint(
                condition=Q(kind=MailboxKind.DROPBOX) | Q(owner__isnull=False),
                name="mailbox_personal_has_owner",
            ),
        ]

    def __str__(self) -> str:
        return self.email_address


class FolderCursor(models.Model):
    """Where a folder's sync stopped: the folder's UIDVALIDITY and the highest UID imported. A new
    UIDVALIDITY means the server renumbered the folder: the cursor restarts (Message-IDs keep the
    re-import idempotent)."""

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="cursors")
    folder = models.CharField(max_length=255)
    uidvalidity = models.BigIntegerField()
    last_uid = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["mailbox", "folder"], name="folder_cursor_unique")]

    def __str__(self) -> str:
        return f"{self.mailbox_id}:{self.folder}@{self.uidvalidity}/{self.last_uid}"


class SkippedMessage(models.Model):
    """A message the sync could not import, with its reason (malformed MIME, too large, ...): shown
    on the mailbox's sync health, never silently dropped, never retried forever."""

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="skipped")
    folder = models.CharField(max_length=255)
    uidvalidity = models.BigIntegerField()
    uid = models.BigIntegerField()
    reason = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["mailbox", "folder", "uidvalidity", "uid"], name="skipped_message_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.folder}/{self.uid}: {self.reason[:60]}"


class EmailThread(models.Model):
    """Messages that answer each other (References / In-Reply-To, else a normalised subject)."""

    subject = models.CharField(max_length=998, blank=True)
    last_message_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.subject or f"thread {self.pk}"


class Direction(models.TextChoices):
    INCOMING = "incoming", "Received"
    OUTGOING = "outgoing", "Sent"


class EmailMessage(models.Model):
    # The normalised Message-ID ("<...>" stripped, lower-cased domain), else "sha256:<digest>" of
    # the headers that identify a message: unique, so a message in two folders or two mailboxes
    # is one row and a re-run of an interrupted sync imports nothing twice.
    message_key = models.CharField(max_length=998, unique=True)
    # The Message-ID header as sent ("<...>"), for In-Reply-To and References of replies. (Named
    # apart from the `message_id` attribute of foreign keys to EmailMessage.)
    header_message_id = models.CharField(max_length=998, blank=True)
    in_reply_to = models.CharField(max_length=998, blank=True)
    references = models.JSONField(default=list, blank=True)
    thread = models.ForeignKey(EmailThread, on_delete=models.PROTECT, related_name="messages")
    subject = models.CharField(max_length=998, blank=True)
    from_address = models.CharField(max_length=320, blank=True)
    from_name = models.CharField(max_length=200, blank=True)
    sent_at = models.DateTimeField(db_index=True)  # the Date header, else the server's arrival time
    # Bodies as received: the text part, and the HTML part sanitised once at import (nh3), so
    # nothing unsanitised is ever stored or shown. The timeline folds quoted text at render.
    text_body = models.TextField(blank=True)
    html_body = models.TextField(blank=True)
    snippet = models.CharField(max_length=300, blank=True)
    size_bytes = models.PositiveIntegerField(default=0)
    has_attachments = models.BooleanField(default=False)
    # The receiving server's Authentication-Results failed the From ("dmarc=fail"): shown as
    # "sender not verified"; such mail creates no contact and counts as no reply.
    auth_failure = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-sent_at", "-pk"]
        indexes = [models.Index(fields=["header_message_id"], name="email_message_header_id")]

    def __str__(self) -> str:
        return self.subject or self.message_key


class MailboxMessage(models.Model):
    """One mailbox's copy of a message: where it is (folder, UID) and whether the owner sent or
    received it. Private mail (linked to no record) is visible to the mailbox's owner alone."""

    class Triage(models.TextChoices):
        # Nothing to link it to yet: listed in the owner's Unmatched inbox.
        PENDING = "pending", "Unmatched"
        LINKED = "linked", "Linked"
        IGNORED = "ignored", "Ignored"

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="messages")
    message = models.ForeignKey(EmailMessage, on_delete=models.CASCADE, related_name="copies")
    folder = models.CharField(max_length=255, blank=True)
    uid = models.BigIntegerField(null=True, blank=True)
    direction = models.CharField(max_length=10, choices=Direction.choices)
    triage = models.CharField(max_length=10, choices=Triage.choices, default=Triage.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["mailbox", "message"], name="mailbox_message_unique")]
        indexes = [models.Index(fields=["mailbox", "triage"], name="mailbox_message_triage")]

    def __str__(self) -> str:
        return f"{self.mailbox_id}:{self.folder}/{self.uid}"


class ParticipantRole(models.TextChoices):
    FROM = "from", "From"
    TO = "to", "To"
    CC = "cc", "Cc"
    BCC = "bcc", "Bcc"


class EmailParticipant(models.Model):
    message = models.ForeignKey(EmailMessage, on_delete=models.CASCADE, related_name="participants")
    role = models.CharField(max_length=4, choices=ParticipantRole.choices)
    address = models.CharField(max_length=320)  # normalised: trimmed, lower-cased
    name = models.CharField(max_length=200, blank=True)
    contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["message", "role", "address"], name="email_participant_unique")
        ]
        indexes = [
            models.Index(fields=["address"], name="email_participant_address"),
            models.Index(fields=["contact"], name="email_participant_contact"),
        ]

    def __str__(self) -> str:
        return f"{self.role}: {self.address}"


class LinkReason(models.TextChoices):
    # Why a message is on a record's timeline (shown there).
    ADDRESS = "address", "Matched by email address"
    THREAD = "thread", "In a thread already on this record"
    REPLY = "reply", "Reply to an email sent from the CRM"
    DROPBOX = "dropbox", "BCC / forwarded to the dropbox"
    MANUAL = "manual", "Linked by hand"
    SENT = "sent", "Sent from the CRM"
    COMPANY = "company", "A participant works at this company"
    DEAL = "deal", "Open deal of a participant"


class EmailLink(models.Model):
    """A message on one record's timeline: exactly one of contact, company, deal."""

    message = models.ForeignKey(EmailMessage, on_delete=models.CASCADE, related_name="links")
    # No single-column indexes: the timeline indexes below lead with the record, so they also
    # serve the lookups by record (erasure, a record's delete cascading here).
    contact = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    company = models.ForeignKey(
        Company, null=True, blank=True, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    deal = models.ForeignKey(
        Deal, null=True, blank=True, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    # The message's sent_at, copied when the link is written (a message's sent_at never changes
    # once stored): the timeline pages a record's links by (sent_at, message) in one index, so a
    # page reads `limit` rows however much mail the record has.
    sent_at = models.DateTimeField()
    reason = models.CharField(max_length=10, choices=LinkReason.choices)
    # The address (or thread / Message-ID) that made the link, for the "why" on the timeline.
    via = models.CharField(max_length=998, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(contact__isnull=False, company__isnull=True, deal__isnull=True)
                    | Q(contact__isnull=True, company__isnull=False, deal__isnull=True)
                    | Q(contact__isnull=True, company__isnull=True, deal__isnull=False)
                ),
                name="email_link_exactly_one_record",
            ),
            models.UniqueConstraint(
                fields=["message", "contact"],
                condition=Q(contact__isnull=False),
                name="email_link_contact_unique",
            ),
            models.UniqueConstraint(
                fields=["message", "company"],
                condition=Q(company__isnull=False),
                name="email_link_company_unique",
            ),
            models.UniqueConstraint(
                fields=["message", "deal"], condition=Q(deal__isnull=False), name="email_link_deal_unique"
            ),
        ]
        # The timelines read a record's messages newest first, at or before a cursor: a scan of
        # one of these in order, stopped after `limit` rows (no sort of the record's whole mail).
        # Partial, since each link is on one record: the three hold each link once between them.
        indexes = [
            models.Index(
                fields=["contact", "-sent_at", "-message"],
                condition=Q(contact__isnull=False),
                name="email_link_contact_timeline",
            ),
            models.Index(
                fields=["company", "-sent_at", "-message"],
                condition=Q(company__isnull=False),
                name="email_link_company_timeline",
            ),
            models.Index(
                fields=["deal", "-sent_at", "-message"],
                condition=Q(deal__isnull=False),
                name="email_link_deal_timeline",
            ),
        ]

    def __str__(self) -> str:
        return f"message {self.message_id} ({self.reason})"


def attachment_path(instance: "EmailAttachment", filename: str) -> str:
    # Content-addressed: the same file in two messages is stored once; the name is never the
    # sender's (path traversal, odd characters), which is kept in `filename` for the download.
    return f"mail/attachments/{instance.sha256[:2]}/{instance.sha256}"


class EmailAttachment(models.Model):
    message = models.ForeignKey(EmailMessage, on_delete=models.CASCADE, related_name="attachments")
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=255, default="application/octet-stream")
    size_bytes = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    # Empty when the file was not kept (over the mailbox's size cap): `skipped_reason` says so.
    file = models.FileField(upload_to=attachment_path, max_length=200, blank=True)
    skipped_reason = models.CharField(max_length=200, blank=True)
    # Inline parts (cid: images) are kept but not listed as downloads.
    content_id = models.CharField(max_length=998, blank=True)

    def __str__(self) -> str:
        return self.filename


class NeverLogEntry(models.Model):
    """An address ("ceo@example.com") or a domain ("example.com") whose mail is never logged:
    workspace-wide (Admins) or for one user's mailboxes."""

    value = models.CharField(max_length=320)  # lower-cased
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["value"]
        constraints = [
            models.UniqueConstraint(
                fields=["value"], condition=Q(owner__isnull=True), name="never_log_workspace_unique"
            ),
            models.UniqueConstraint(
                fields=["owner", "value"], condition=Q(owner__isnull=False), name="never_log_owner_unique"
            ),
        ]

    def __str__(self) -> str:
        return self.value


class EmailTemplate(models.Model):
    """A reusable email with merge fields ({{ contact.first_name }}, {{ deal.title }}, ...)."""

    name = models.CharField(max_length=200)
    subject = models.CharField(max_length=998)
    body = models.TextField()
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # Shared templates are offered to every rep; personal ones to their owner only.
    shared = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "pk"]

    def __str__(self) -> str:
        return self.name


class SendStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    CANCELED = "canceled", "Canceled"


class OutgoingEmail(models.Model):
    """An email a rep sends from a record, through their own mailbox's SMTP. The Message-ID is
    chosen when the row is written, so a retried send is the same message (the sync recognises
    its copy in the Sent folder and a reply's In-Reply-To finds it)."""

    mailbox = models.ForeignKey(Mailbox, on_delete=models.PROTECT, related_name="sends")
    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    to = models.JSONField(default=list)
    cc = models.JSONField(default=list, blank=True)
    bcc = models.JSONField(default=list, blank=True)
    subject = models.CharField(max_length=998)
    body_text = models.TextField(blank=True)
    body_html = models.TextField(blank=True)
    contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    deal = models.ForeignKey(Deal, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    template = models.ForeignKey(
        EmailTemplate, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reply_to_message = models.ForeignKey(
        EmailMessage, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    header_message_id = models.CharField(max_length=998, unique=True)
    # The stored message once sent (its timeline entry).
    message = models.OneToOneField(
        EmailMessage, null=True, blank=True, on_delete=models.SET_NULL, related_name="outgoing"
    )
    track = models.BooleanField(default=False)
    # Secret part of the open pixel and click URLs of this send (mail.services.tracking).
    tracking_token = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=10, choices=SendStatus.choices, default=SendStatus.SCHEDULED)
    send_at = models.DateTimeField(db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-send_at", "-pk"]
        indexes = [
            models.Index(fields=["status", "send_at"], name="outgoing_email_due"),
            models.Index(fields=["mailbox", "sent_at"], name="outgoing_email_mailbox_sent"),
        ]

    def __str__(self) -> str:
        return self.subject


class TrackedLink(models.Model):
    """A link of a tracked send: the click redirect answers only URLs stored here (no open
    redirect through a forged token)."""

    send = models.ForeignKey(OutgoingEmail, on_delete=models.CASCADE, related_name="links")
    position = models.PositiveSmallIntegerField()
    url = models.URLField(max_length=2000)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["send", "position"], name="tracked_link_unique")]

    def __str__(self) -> str:
        return self.url
