"""A person's email under "Erase person" and "Export person" (privacy calls these; mail sits
below it).

Erasure: a message is the person's when they wrote it, or when nobody outside the workspace but
them took part: it goes whole (its copies, links, participants and attachments; an attachment
file goes when no other message holds the same bytes). A message they only took part in beside
other outsiders stays for those others, without the person: their participant rows and the links
to their contacts go. Sends from the CRM to them go (with their tracked links); a send to them
and others keeps its other recipients. The Email Sent / Opened / Clicked events are the event
log's, erased with the person's other events.
"""

from collections.abc import Iterable, Iterator

from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q

from mail.models import EmailAttachment, EmailLink, EmailMessage, EmailParticipant, Mailbox, OutgoingEmail


def _addresses(values: Iterable[str]) -> list[str]:
    return sorted({v.strip().lower() for v in values if v and "@" in v})


def _person_messages(*, contact_ids: list[int], addresses: list[str]):
    """Ids of the messages the person took part in or that are linked to them."""
    by_participant = EmailParticipant.objects.filter(
        Q(address__in=addresses) | Q(contact_id__in=contact_ids)
    ).values("message_id")
    by_link = EmailLink.objects.filter(contact_id__in=contact_ids).values("message_id")
    return EmailMessage.objects.filter(Q(pk__in=by_participant) | Q(pk__in=by_link))


def person_mail_count(*, contact_ids: list[int], addresses: Iterable[str]) -> int:
    return _person_messages(contact_ids=contact_ids, addresses=_addresses(addresses)).count()


def _theirs(message_ids: list[int], *, contact_ids: list[int], addresses: list[str]) -> set[int]:
    """Of these messages, those that are the person's alone (written by them, or with no other
    outside participant)."""
    rows = EmailParticipant.objects.filter(message_id__in=message_ids).values_list(
        "message_id", "role", "address", "contact_id", "user_id"
    )
    person = set(addresses)
    # The workspace's side: users (by row, or by address when the row predates the user) and
    # the mailboxes' own addresses.
    ours = {e.lower() for e in get_user_model().objects.exclude(email="").values_list("email", flat=True)}
    ours |= {e.lower() for e in Mailbox.objects.values_list("email_address", flat=True)}
    others: set[int] = set()
    written: set[int] = set()
    for message_id, role, address, contact_id, user_id in rows:
        mine = address in person or (contact_id is not None and contact_id in contact_ids)
        if mine and role == "from":
            written.add(message_id)
        elif not mine and user_id is None and address not in ours:
            others.add(message_id)
    return written | (set(message_ids) - others)


def _delete_files(names: set[str]) -> int:
    """Stored attachment files no remaining row points to (content-addressed: shared bytes)."""
    still = set(EmailAttachment.objects.filter(file__in=names).values_list("file", flat=True))
    gone = 0
    for name in names - still:
        if default_storage.exists(name):
            default_storage.delete(name)
            gone += 1
    return gone


def person_mail_erase(*, contact_ids: list[int], addresses: Iterable[str]) -> dict[str, int]:
    """Erase the person's mail (module docstring); counts by model label. Idempotent."""
    addresses = _addresses(addresses)
    counts: dict[str, int] = {}
    with transaction.atomic():
        ids = list(
            _person_messages(contact_ids=contact_ids, addresses=addresses).values_list("pk", flat=True)
        )
        whole = _theirs(ids, contact_ids=contact_ids, addresses=addresses)
        files = set(
            EmailAttachment.objects.filter(message_id__in=whole)
            .exclude(file="")
            .values_list("file", flat=True)
        )
        # Sends: about their contact, or to them alone, go; a send to others too loses them.
        doomed = set(
            OutgoingEmail.objects.filter(Q(contact_id__in=contact_ids) | Q(message_id__in=whole)).values_list(
                "pk", flat=True
            )
        )
        addressed = (
            Q(to__has_any_keys=addresses) | Q(cc__has_any_keys=addresses) | Q(bcc__has_any_keys=addresses)
        )
        for send in (
            OutgoingEmail.objects.filter(addressed).exclude(pk__in=doomed).only("pk", "to", "cc", "bcc")
        ):
            lists = [
                [a for a in getattr(send, f) if str(a).strip().lower() not in addresses]
                for f in ("to", "cc", "bcc")
            ]
            if lists == [send.to, send.cc, send.bcc]:
                continue
            if not any(lists):
                doomed.add(send.pk)
                continue
            send.to, send.cc, send.bcc = lists
            send.save(update_fields=["to", "cc", "bcc"])
        counts["mail.OutgoingEmail"] = (
            OutgoingEmail.objects.filter(pk__in=doomed).delete()[1].get("mail.OutgoingEmail", 0)
        )
        deleted = EmailMessage.objects.filter(pk__in=whole).delete()[1]
        for label in ("mail.EmailMessage", "mail.EmailAttachment"):
            counts[label] = deleted.get(label, 0)
        # Messages that stay for others: without the person.
        kept = [m for m in ids if m not in whole]
        counts["mail.EmailParticipant"] = EmailParticipant.objects.filter(
            Q(address__in=addresses) | Q(contact_id__in=contact_ids), message_id__in=kept
        ).delete()[0]
        counts["mail.EmailLink"] = EmailLink.objects.filter(
            message_id__in=kept, contact_id__in=contact_ids
        ).delete()[0]
        transaction.on_commit(lambda: _delete_files(files))
    return {label: n for label, n in counts.items() if n}


def person_mail_export(*, contact_ids: list[int], addresses: Iterable[str]) -> Iterator[dict]:
    """The person's messages, oldest first, as "Export person" lists them (bodies included;
    attachments by name, type and size)."""
    messages = (
        _person_messages(contact_ids=contact_ids, addresses=_addresses(addresses))
        .prefetch_related("participants", "attachments")
        .order_by("sent_at", "pk")
    )
    for m in messages.iterator(chunk_size=200):
        yield {
            "id": m.pk,
            "message_id": m.header_message_id,
            "subject": m.subject,
            "from": m.from_address,
            "participants": [
                {"role": p.role, "address": p.address, "name": p.name} for p in m.participants.all()
            ],
            "sent_at": m.sent_at,
            "text_body": m.text_body,
            "html_body": m.html_body,
            "attachments": [
                {"filename": a.filename, "content_type": a.content_type, "size_bytes": a.size_bytes}
                for a in m.attachments.all()
            ],
        }
