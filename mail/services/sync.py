"""IMAP sync: a mailbox's chosen folders into the mail tables, incrementally and resumably.

Each folder keeps a cursor (FolderCursor: the folder's UIDVALIDITY and the highest UID stored).
A run SELECTs the folder read-only, SEARCHes the UIDs above the cursor (and on or after the
mailbox's start date), and FETCHes them a batch at a time; each batch is stored
(mail.services.ingest.messages_store) and the cursor advanced *in one transaction*, so a run
killed or cut off anywhere loses at most the batch in flight and the next run starts after the
last stored message. A re-fetched message is one row however often it arrives (the store is
idempotent by Message-ID), so nothing is doubled either. A new UIDVALIDITY (the server renumbered
the folder) restarts the cursor at 0, for the same reason safely.

Health is honest: a run records when it tried, and either its success (when, how many new
messages) or the failure in words a rep can act on; a message that cannot be read becomes a
SkippedMessage with its reason (listed on the mailbox, never retried forever), never a silent gap.

One run per mailbox at a time: a run takes a lease on the mailbox row (an UPDATE that succeeds
for one caller) and renews it every batch; beat and the Retry button at once, or two workers,
find it held and leave. A killed run's lease lapses after LEASE.
"""

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError

from mail.models import FolderCursor, Mailbox, SkippedMessage, SyncState
from mail.parsing import MessageUnparseable, message_parse
from mail.services.auth import MailServerError, describe_network_error, imap_session
from mail.services.ingest import IncomingItem, messages_store
from mail.services.matching import never_log_rules

logger = logging.getLogger(__name__)

LEASE = timedelta(minutes=10)
DEFAULT_FOLDERS = ["INBOX"]


@dataclass(slots=True)
class FolderResult:
    folder: str
    uidvalidity: int = 0
    fetched: int = 0  # messages read from the server this run
    imported: int = 0  # new copies in this mailbox
    skipped: int = 0  # unreadable or refused (SkippedMessage rows)
    never_logged: int = 0
    more: bool = False  # the run's budget ended before the folder did
    error: str = ""


@dataclass(slots=True)
class SyncResult:
    ran: bool  # False: another run holds the mailbox, or it is paused
    folders: list[FolderResult] = field(default_factory=list)
    error: str = ""

    @property
    def imported(self) -> int:
        return sum(f.imported for f in self.folders)

    @property
    def more(self) -> bool:
        return any(f.more for f in self.folders)


def _lease_take(mailbox_id: int, *, now: datetime) -> bool:
    free = Q(sync_lease_until__isnull=True) | Q(sync_lease_until__lt=now)
    taken = (
        Mailbox.objects.filter(free, pk=mailbox_id)
        .exclude(sync_state=SyncState.PAUSED)
        .update(sync_lease_until=now + LEASE, last_attempt_at=now)
    )
    return taken == 1


def _lease_renew(mailbox_id: int) -> None:
    Mailbox.objects.filter(pk=mailbox_id).update(sync_lease_until=timezone.now() + LEASE)


def _lease_release(mailbox_id: int) -> None:
    Mailbox.objects.filter(pk=mailbox_id).update(sync_lease_until=None)


def _search(client: IMAPClient, *, after_uid: int, since: date | None) -> list[int]:
    criteria: list = ["UID", f"{after_uid + 1}:*"]
    if since is not None:
        criteria += ["SINCE", since]
    # "n:*" always matches the folder's highest UID, even below n: keep only the new ones.
    return sorted(uid for uid in client.search(criteria) if uid > after_uid)


def _items(client: IMAPClient, uids: list[int], *, folder: str, max_bytes: int):
    """(items, skipped [(uid, reason)]) for a batch: the whole message when it is under the size
    limit, else its header alone with a note (a 200 MB message is not worth a worker's memory)."""
    sizes = client.fetch(uids, ["RFC822.SIZE"])
    whole = [uid for uid in uids if sizes.get(uid, {}).get(b"RFC822.SIZE", 0) <= max_bytes]
    large = [uid for uid in uids if uid not in set(whole)]
    fetched = client.fetch(whole, ["BODY.PEEK[]", "INTERNALDATE"]) if whole else {}
    headers = client.fetch(large, ["BODY.PEEK[HEADER]", "INTERNALDATE"]) if large else {}
    items, skipped = [], []
    for uid in uids:
        data = fetched.get(uid) or headers.get(uid)
        if data is None:  # expunged between SEARCH and FETCH
            continue
        raw = data.get(b"BODY[]") if uid in fetched else data.get(b"BODY[HEADER]")
        received = data.get(b"INTERNALDATE")
        if isinstance(received, datetime) and received.tzinfo is None:
            received = timezone.make_aware(received, timezone.get_current_timezone())
        try:
            parsed = message_parse(raw=raw or b"", received_at=received)
        except MessageUnparseable as exc:
            skipped.append((uid, str(exc)))
            continue
        if uid not in fetched:
            size = sizes[uid][b"RFC822.SIZE"]
            note = (
                f"This message is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB the sync "
                "imports: only its headers were kept. Open it in your mail client."
            )
            parsed.text_body = parsed.snippet = note
            parsed.size_bytes = size
        items.append(IncomingItem(parsed=parsed, folder=folder, uid=uid))
    return items, skipped


def _folder_sync(
    client: IMAPClient, *, mailbox: Mailbox, folder: str, budget: int, batch_size: int, rules
) -> FolderResult:
    result = FolderResult(folder=folder)
    try:
        info = client.select_folder(folder, readonly=True)
    except IMAPClientAbortError:
        raise  # the connection is gone: the run stops (mailbox_sync says so)
    except IMAPClientError as exc:
        # The server refused this folder (renamed, deleted): the other folders go on.
        result.error = f"Folder {folder!r} could not be opened ({exc}); choose the folders again."
        return result
    uidvalidity = int(info[b"UIDVALIDITY"])
    result.uidvalidity = uidvalidity
    cursor, _ = FolderCursor.objects.get_or_create(
        mailbox=mailbox, folder=folder, defaults={"uidvalidity": uidvalidity}
    )
    if cursor.uidvalidity != uidvalidity:
        logger.info("mailbox %s folder %r renumbered (UIDVALIDITY changed): restarting", mailbox.pk, folder)
        cursor.uidvalidity, cursor.last_uid = uidvalidity, 0
        cursor.save(update_fields=["uidvalidity", "last_uid", "updated_at"])
    uids = _search(client, after_uid=cursor.last_uid, since=mailbox.sync_since)
    result.more = len(uids) > budget
    uids = uids[:budget]
    max_bytes = settings.MAIL_SYNC_MESSAGE_MAX_BYTES
    for start in range(0, len(uids), batch_size):
        batch = uids[start : start + batch_size]
        items, unreadable = _items(client, batch, folder=folder, max_bytes=max_bytes)
        with transaction.atomic():
            stored = messages_store(mailbox=mailbox, items=items, rules=rules)
            refused = [(item.uid, reason) for item, reason in stored.skipped]
            SkippedMessage.objects.bulk_create(
                [
                    SkippedMessage(
                        mailbox=mailbox, folder=folder, uidvalidity=uidvalidity, uid=uid, reason=why
                    )
                    for uid, why in unreadable + refused
                ],
                ignore_conflicts=True,
            )
            FolderCursor.objects.filter(pk=cursor.pk).update(last_uid=batch[-1])
            Mailbox.objects.filter(pk=mailbox.pk).update(
                imported_total=F("imported_total") + stored.copies,
                sync_lease_until=timezone.now() + LEASE,
            )
        result.fetched += len(batch)
        result.imported += stored.copies
        result.skipped += len(unreadable) + len(refused)
        result.never_logged += stored.never_logged
    return result


def mailbox_sync(*, mailbox_id: int, budget: int | None = None, batch_size: int | None = None) -> SyncResult:
    """Import what is new in the mailbox's folders, at most `budget` messages this run (the
    setting MAIL_SYNC_MAX_PER_RUN: a first import of 100k messages proceeds over several runs
    and never starves other mailboxes). Records the run's outcome on the mailbox."""
    now = timezone.now()
    if not _lease_take(mailbox_id, now=now):
        return SyncResult(ran=False)
    budget = budget if budget is not None else settings.MAIL_SYNC_MAX_PER_RUN
    batch_size = batch_size or settings.MAIL_SYNC_BATCH
    result = SyncResult(ran=True)
    try:
        mailbox = Mailbox.objects.select_related("owner").get(pk=mailbox_id)
        rules = never_log_rules(owner_id=mailbox.owner_id)
        current = ""
        try:
            with imap_session(mailbox) as client:
                client.normalise_times = False  # INTERNALDATE with its zone
                for folder in mailbox.folders or DEFAULT_FOLDERS:
                    current = folder
                    left = budget - sum(f.fetched for f in result.folders)
                    if left <= 0:
                        result.folders.append(FolderResult(folder=folder, more=True))
                        continue
                    done = _folder_sync(
                        client,
                        mailbox=mailbox,
                        folder=folder,
                        budget=left,
                        batch_size=batch_size,
                        rules=rules,
                    )
                    result.folders.append(done)
        except MailServerError as exc:
            result.error = str(exc)
        except (OSError, EOFError, IMAPClientError) as exc:
            result.error = (
                f"IMAP {mailbox.imap_host}:{mailbox.imap_port}: the connection was lost while reading "
                f"{current or 'the mailbox'} ({describe_network_error(exc)}). Everything stored so far "
                "is kept; the next run continues after it."
            )
        if not result.error:
            result.error = "; ".join(f.error for f in result.folders if f.error)
        _record(mailbox_id, result)
    except Exception:
        Mailbox.objects.filter(pk=mailbox_id).update(
            sync_state=SyncState.FAILING,
            last_error="The sync stopped on an unexpected error (logged for the administrator).",
            last_error_at=timezone.now(),
        )
        raise
    finally:
        _lease_release(mailbox_id)
    return result


def _record(mailbox_id: int, result: SyncResult) -> None:
    now = timezone.now()
    mailboxes = Mailbox.objects.filter(pk=mailbox_id)
    if result.error:
        logger.warning("mailbox %s sync failed: %s", mailbox_id, result.error)
        mailboxes.update(sync_state=SyncState.FAILING, last_error=result.error, last_error_at=now)
    else:
        mailboxes.update(
            sync_state=SyncState.ACTIVE, last_success_at=now, last_imported=result.imported, last_error=""
        )


def mailboxes_due() -> list[int]:
    """The mailboxes a beat run syncs: all but the paused ones and the new ones whose owner has not
    started the first import (a failing one is retried: the server may be back, and its error
    stays shown until a run succeeds)."""
    due = Mailbox.objects.exclude(sync_state__in=[SyncState.PAUSED, SyncState.NEW])
    return list(due.order_by("pk").values_list("pk", flat=True))
