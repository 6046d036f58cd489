"""Connecting a mailbox (Settings → Email): create and edit with the password encrypted at rest,
"Test connection" that tries IMAP and SMTP and names what failed, the server's folder list, the
dry-run count shown before the first import, and the first import's start.

A personal mailbox is its owner's alone (another user, an Admin included, gets "not found": its
private mail is behind it); the workspace dropbox is managed by Admins. A new mailbox is not
synced until its owner has seen the dry-run count and pressed "Start import" (state NEW: the
beat leaves it alone)."""

from dataclasses import dataclass, field
from datetime import date

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from imapclient.exceptions import IMAPClientError

from accounts.roles import is_admin
from core.errors import DomainError, Forbidden, NotFound
from mail.crypto import secret_encrypt
from mail.models import EmailLink, EmailMessage, Mailbox, MailboxKind, SyncState
from mail.services.auth import MailServerError, describe_network_error, imap_session, smtp_open

# What a form may set; the secret, the state and the health fields are written here only.
EDITABLE = (
    "email_address",
    "display_name",
    "imap_host",
    "imap_port",
    "imap_security",
    "smtp_host",
    "smtp_port",
    "smtp_security",
    "username",
    "folders",
    "sync_since",
    "unknown_policy",
    "daily_send_cap",
    "deal_link_limit",
    "attachment_max_bytes",
    "track_by_default",
)


def mailbox_may_manage(user: AbstractBaseUser, mailbox: Mailbox) -> bool:
    if mailbox.kind == MailboxKind.DROPBOX:
        return is_admin(user)
    return mailbox.owner_id == user.pk


def mailbox_for(*, user: AbstractBaseUser, mailbox_id: int) -> Mailbox:
    """The mailbox if `user` manages it; NotFound otherwise (never "forbidden": whether a colleague
    has connected a mailbox is not yours to learn)."""
    mailbox = Mailbox.objects.select_related("owner").filter(pk=mailbox_id).first()
    if mailbox is None or not mailbox_may_manage(user, mailbox):
        raise NotFound("No such mailbox.")
    return mailbox


def _check_folders(folders: list[str]) -> list[str]:
    cleaned = []
    for name in folders:
        name = (name or "").strip()
        if name and name not in cleaned:
            if len(name) > 255 or any(ord(c) < 32 for c in name):
                raise DomainError(f"Not a folder name: {name[:40]!r}.")
            cleaned.append(name)
    return cleaned


@transaction.atomic
def mailbox_create(*, actor: AbstractBaseUser, password: str, dropbox: bool = False, **fields) -> Mailbox:
    """A new mailbox of `actor` (or the workspace dropbox, Admins only), not synced until started."""
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise TypeError(f"not editable: {sorted(unknown)}")
    if dropbox and not is_admin(actor):
        raise Forbidden("Only an Admin can set up the workspace dropbox.")
    if not password:
        raise DomainError("Enter the mailbox's password (an app password where the provider asks for one).")
    fields["folders"] = _check_folders(fields.get("folders") or ["INBOX"])
    mailbox = Mailbox(
        kind=MailboxKind.DROPBOX if dropbox else MailboxKind.PERSONAL,
        owner=None if dropbox else actor,
        secret_encrypted=secret_encrypt(password),
        sync_state=SyncState.NEW,
        **fields,
    )
    mailbox.full_clean(exclude=["secret_encrypted"])
    try:
        mailbox.save()
    except IntegrityError:
        raise DomainError(
            "The workspace already has a dropbox." if dropbox else "You have already connected this address."
        ) from None
    return mailbox


@transaction.atomic
def mailbox_update(*, actor: AbstractBaseUser, mailbox: Mailbox, password: str = "", **fields) -> Mailbox:
    """Edit a mailbox; a blank password keeps the stored one. Changing the server or the account
    restarts nothing by itself: the cursors stay valid (UIDVALIDITY says when they are not)."""
    if not mailbox_may_manage(actor, mailbox):
        raise NotFound("No such mailbox.")
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise TypeError(f"not editable: {sorted(unknown)}")
    if "folders" in fields:
        fields["folders"] = _check_folders(fields["folders"])
    for name, value in fields.items():
        setattr(mailbox, name, value)
    update = list(fields)
    if password:
        mailbox.secret_encrypted = secret_encrypt(password)
        update.append("secret_encrypted")
    mailbox.full_clean(exclude=["secret_encrypted"])
    mailbox.save(update_fields=[*update, "updated_at"])
    return mailbox


def mailbox_delete(*, actor: AbstractBaseUser, mailbox: Mailbox) -> None:
    """Disconnect: the mailbox, its cursors and its copies go; messages linked to records stay on
    their timelines (they are the CRM's record of the conversation), private ones with no other
    copy go with it."""
    if not mailbox_may_manage(actor, mailbox):
        raise NotFound("No such mailbox.")
    with transaction.atomic():
        ids = list(mailbox.messages.values_list("message_id", flat=True))
        if mailbox.sends.exists():
            # Sends keep their mailbox (PROTECT): pause instead, so the record of them stays.
            raise DomainError("This mailbox has sent email from the CRM: pause it instead of removing it.")
        mailbox.delete()
        orphans = EmailMessage.objects.filter(pk__in=ids, copies__isnull=True).exclude(
            pk__in=EmailLink.objects.filter(message_id__in=ids).values("message_id")
        )
        orphans.delete()


def mailbox_pause(*, actor: AbstractBaseUser, mailbox: Mailbox, paused: bool) -> None:
    if not mailbox_may_manage(actor, mailbox):
        raise NotFound("No such mailbox.")
    state = SyncState.PAUSED if paused else (SyncState.ACTIVE if mailbox.last_success_at else SyncState.NEW)
    Mailbox.objects.filter(pk=mailbox.pk).update(sync_state=state)
    mailbox.sync_state = state


def mailbox_start(*, actor: AbstractBaseUser, mailbox: Mailbox) -> None:
    """The owner has seen the dry-run count: from now on the beat syncs the mailbox (the caller
    queues the first run at once)."""
    if not mailbox_may_manage(actor, mailbox):
        raise NotFound("No such mailbox.")
    if mailbox.sync_state in (SyncState.NEW, SyncState.PAUSED):
        Mailbox.objects.filter(pk=mailbox.pk).update(sync_state=SyncState.ACTIVE)
        mailbox.sync_state = SyncState.ACTIVE


# --- talking to the servers


@dataclass(frozen=True, slots=True)
class Folder:
    name: str
    special: str = ""  # "\\Sent", "\\Trash", ... (RFC 6154 special use), or ""
    selectable: bool = True


@dataclass(slots=True)
class ConnectionReport:
    imap_error: str = ""
    smtp_error: str = ""
    smtp_tested: bool = False
    folders: list[Folder] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.imap_error and not self.smtp_error


_SPECIAL = (b"\\Sent", b"\\Drafts", b"\\Trash", b"\\Junk", b"\\Archive", b"\\All", b"\\Flagged")


def _folders(client) -> list[Folder]:
    found = []
    for flags, _delimiter, name in client.list_folders():
        special = next((f.decode() for f in flags if f in _SPECIAL), "")
        found.append(Folder(name=name, special=special, selectable=b"\\Noselect" not in flags))
    # INBOX first, then the special folders, then the rest by name.
    return sorted(found, key=lambda f: (f.name.upper() != "INBOX", not f.special, f.name.lower()))


def server_folders(*, mailbox: Mailbox) -> tuple[list[Folder], str]:
    """The folders on the server, or why they could not be listed."""
    try:
        with imap_session(mailbox, timeout=15) as client:
            return _folders(client), ""
    except MailServerError as exc:
        return [], str(exc)
    except (OSError, EOFError, IMAPClientError) as exc:
        return [], f"IMAP {mailbox.imap_host}:{mailbox.imap_port}: {describe_network_error(exc)}."


def connection_test(*, mailbox: Mailbox) -> ConnectionReport:
    """Log in to IMAP (and list the folders) and to SMTP when one is set; each failure in words."""
    report = ConnectionReport()
    try:
        with imap_session(mailbox, timeout=15) as client:
            report.folders = _folders(client)
    except MailServerError as exc:
        report.imap_error = str(exc)
    except (OSError, EOFError, IMAPClientError) as exc:
        report.imap_error = f"IMAP {mailbox.imap_host}:{mailbox.imap_port}: {describe_network_error(exc)}."
    if mailbox.smtp_host:
        report.smtp_tested = True
        try:
            server = smtp_open(mailbox, timeout=15)
        except MailServerError as exc:
            report.smtp_error = str(exc)
        else:
            server.quit()
    return report


def default_folders(folders: list[Folder]) -> list[str]:
    """INBOX and the Sent folder: what a new mailbox syncs unless its owner picks others."""
    chosen = [f.name for f in folders if f.name.upper() == "INBOX"]
    chosen += [f.name for f in folders if f.special == "\\Sent"][:1]
    return chosen or ["INBOX"]


def dry_run_count(*, mailbox: Mailbox) -> dict[str, int | str]:
    """How many messages each chosen folder holds from the start date on (what the first import
    will read), or the folder's error. Read-only: nothing is fetched or stored."""
    counts: dict[str, int | str] = {}
    since: date | None = mailbox.sync_since
    with imap_session(mailbox, timeout=30) as client:
        for folder in mailbox.folders or ["INBOX"]:
            try:
                client.select_folder(folder, readonly=True)
                counts[folder] = len(client.search(["SINCE", since] if since else ["ALL"]))
            except IMAPClientError as exc:
                counts[folder] = f"could not be opened ({exc})"
    return counts
