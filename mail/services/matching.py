"""Which records a message belongs on: the one matcher the sync, the dropbox and the sender share.

A message links to the contacts among its participants (by normalised address: the identity
graph's email identifiers first, then the contacts' own email field, as the stitcher resolves
them), to those contacts' companies and to their most recent open deals (HubSpot: 5; a setting
per mailbox), to the records already on its thread, and, for a reply to a send from the CRM, to
the send's contact and deal with an `Email Replied` event. Each link keeps why it was made (the
timeline shows it). Everything here is idempotent: links are unique per (message, record) and
written with ON CONFLICT DO NOTHING, so a re-synced folder or a retried task links nothing twice.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Lower

from contacts import services as contact_services
from contacts.models import Contact
from core.errors import Conflict, Forbidden
from identity.models import Identity, IdentityKind
from mail.models import (
    Direction,
    EmailLink,
    EmailMessage,
    EmailParticipant,
    LinkReason,
    Mailbox,
    MailboxKind,
    MailboxMessage,
    NeverLogEntry,
    OutgoingEmail,
    ParticipantRole,
    UnknownAddressPolicy,
)
from mail.services.events import EMAIL_REPLIED, EmailEvent, email_events_record
from pipeline.models import Deal, DealStatus

# When no mailbox is given (a message linked by hand, a send's own links): HubSpot's default.
DEFAULT_DEAL_LINK_LIMIT = 5


def address_normalise(address: str) -> str:
    """The stored form of an email address: trimmed, angle brackets dropped, lower-cased (the
    identity graph and the contacts' unique email index compare lower-cased too); "" for what is
    not an address (no "@", no domain, whitespace inside)."""
    value = (address or "").strip().strip("<>").strip().lower()
    local, at, domain = value.rpartition("@")
    if not at or not local or "." not in domain or any(c.isspace() for c in value):
        return ""
    return value[:320]


@dataclass(frozen=True, slots=True)
class NeverLogRules:
    """The never-log list as it applies to one mailbox owner's mail: load once per sync batch
    (one query), then test every message's addresses in memory."""

    addresses: frozenset[str]
    domains: frozenset[str]

    def blocked(self, addresses: Iterable[str]) -> set[str]:
        found = set()
        for raw in addresses:
            address = address_normalise(raw)
            if not address:
                continue
            if address in self.addresses:
                found.add(address)
                continue
            # "example.com" covers mail.example.com too: a company's subdomains are the company.
            domain = address.rpartition("@")[2]
            parts = domain.split(".")
            if any(".".join(parts[i:]) in self.domains for i in range(len(parts) - 1)):
                found.add(address)
        return found


def never_log_rules(*, owner_id: int | None) -> NeverLogRules:
    """The workspace's entries and, for a personal mailbox, its owner's."""
    values = NeverLogEntry.objects.filter(Q(owner__isnull=True) | Q(owner_id=owner_id)).values_list(
        "value", flat=True
    )
    addresses, domains = set(), set()
    for value in values:
        value = value.strip().lower().lstrip("@")
        (addresses if "@" in value else domains).add(value)
    return NeverLogRules(addresses=frozenset(addresses), domains=frozenset(domains))


def never_logged(*, addresses: Iterable[str], owner_id: int | None) -> set[str]:
    """The normalised addresses among `addresses` that are on the never-log list (an entry is an
    address, or a domain with its subdomains). For many messages, load `never_log_rules` once."""
    return never_log_rules(owner_id=owner_id).blocked(addresses)


def internal_addresses() -> set[str]:
    """The workspace's own people: users' emails and every connected mailbox's address. Mail
    between colleagues links to no contact, and no contact is ever created for them."""
    user_emails = get_user_model().objects.exclude(email="").values_list(Lower("email"), flat=True)
    mailbox_emails = Mailbox.objects.values_list(Lower("email_address"), flat=True)
    return set(user_emails) | set(mailbox_emails)


def contacts_by_address(*, addresses: Iterable[str]) -> dict[str, int]:
    """Normalised address -> live contact id: the identity graph's email identifiers first (an
    address the tracker saw belongs to the contact it was stitched to), then the contacts' email
    field. A merged contact's identifier answers its survivor."""
    wanted = {a for a in (address_normalise(x) for x in addresses) if a}
    if not wanted:
        return {}
    found: dict[str, int] = dict(
        Identity.objects.filter(kind=IdentityKind.EMAIL, value__in=wanted).values_list("value", "contact_id")
    )
    if rest := wanted - found.keys():
        by_email = Contact.objects.annotate(email_lower=Lower("email")).filter(email_lower__in=rest)
        found.update(by_email.filter(merged_into__isnull=True).values_list("email_lower", "pk"))
        # A merged-away contact keeps its old address: mail to it belongs to the survivor.
        if rest := rest - found.keys():
            found.update(
                by_email.filter(email_lower__in=rest).order_by("pk").values_list("email_lower", "pk")
            )
    return _survivors(found)


def _survivors(found: dict[str, int]) -> dict[str, int]:
    merged = dict(
        Contact.objects.filter(pk__in=set(found.values()), merged_into__isnull=False).values_list(
            "pk", "merged_into_id"
        )
    )
    for _ in range(10):  # merge chains are short; the bound only guards a corrupt cycle
        if not merged:
            break
        found = {address: merged.get(pk, pk) for address, pk in found.items()}
        merged = dict(
            Contact.objects.filter(pk__in=set(found.values()), merged_into__isnull=False).values_list(
                "pk", "merged_into_id"
            )
        )
    return found


def display_name_split(name: str) -> dict[str, str]:
    first, _, last = (name or "").strip().strip('"').partition(" ")
    return {"first_name": first[:100], "last_name": last.strip()[:100]}


def _create_unknown(*, mailbox: Mailbox, candidates: dict[str, str], known: dict[str, int]) -> None:
    """Create contacts for `candidates` (address -> display name) on the mailbox owner's behalf,
    as the mailbox's unknown-address policy asks. A concurrent sync creating the same person
    wins the unique email index: its contact is used. An owner who may not create contacts
    (a read-only role) gets none created: their mail stays unmatched, for triage."""
    for address, name in sorted(candidates.items()):
        try:
            with transaction.atomic():
                contact = contact_services.contact_create(
                    actor=mailbox.owner, email=address, **display_name_split(name)
                )
        except Conflict:
            known.update(contacts_by_address(addresses=[address]))
            continue
        except Forbidden:
            return
        known[address] = contact.pk


def _reply_targets(messages: Sequence[EmailMessage]) -> dict[int, OutgoingEmail]:
    """Message id -> the CRM send it answers (its In-Reply-To, else the newest of its References
    that names one). Matched by the header as written and by the normalised key, so a client that
    rewrites the brackets or the domain's case still threads."""
    from mail.headers import message_key

    refs: dict[int, list[str]] = {}
    for message in messages:
        chain = [message.in_reply_to, *reversed(message.references or [])]
        refs[message.pk] = [r.strip() for r in chain if r and r.strip()]
    raw = {r for chain in refs.values() for r in chain}
    if not raw:
        return {}
    keys = {message_key(header_message_id=r) for r in raw}
    bracketed = {f"<{k}>" for k in keys}
    sends = OutgoingEmail.objects.filter(
        Q(header_message_id__in=raw | bracketed) | Q(message__message_key__in=keys)
    ).select_related("message")
    by_key: dict[str, OutgoingEmail] = {}
    for send in sends:
        by_key[message_key(header_message_id=send.header_message_id)] = send
    found = {}
    for message in messages:
        for ref in refs[message.pk]:
            send = by_key.get(message_key(header_message_id=ref))
            if send is not None and send.message_id != message.pk:
                found[message.pk] = send
                break
    return found


@transaction.atomic
def messages_link(
    *,
    mailbox: Mailbox | None,
    messages: Sequence[EmailMessage],
    reason: str = LinkReason.ADDRESS,
) -> int:
    """Link `messages` (their participants already stored) to their records; see the module
    docstring. Returns how many links were made (0 when run again)."""
    messages = [m for m in messages if m.pk is not None]
    if not messages:
        return 0
    ids = [m.pk for m in messages]
    before = EmailLink.objects.filter(message_id__in=ids).count()
    participants = list(
        EmailParticipant.objects.filter(message_id__in=ids).only(
            "pk", "message_id", "role", "address", "name", "contact_id", "user_id"
        )
    )
    internal = internal_addresses()
    for p in participants:  # stored normalised by the sync; a hand-made row may not be
        p.address = address_normalise(p.address)
    external = [p for p in participants if p.user_id is None and p.address and p.address not in internal]
    known = contacts_by_address(addresses={p.address for p in external})

    if mailbox is not None and mailbox.kind == MailboxKind.PERSONAL:
        # Mail whose From the receiving server refused creates nobody (spam and phishing forge it).
        forged = {m.pk for m in messages if m.auth_failure}
        trusted = [p for p in external if p.message_id not in forged]
        _apply_unknown_policy(mailbox=mailbox, ids=ids, external=trusted, known=known)

    # The participants' contacts, kept on the row (the erasure and the timeline read them).
    changed = []
    for p in external:
        contact_id = known.get(p.address)
        if contact_id is not None and p.contact_id != contact_id:
            p.contact_id = contact_id
            changed.append(p)
    if changed:
        EmailParticipant.objects.bulk_update(changed, ["contact"], batch_size=500)  # only the contact column

    contacts_of: dict[int, dict[int, str]] = defaultdict(dict)  # message -> contact -> address
    for p in external:
        if (contact_id := known.get(p.address)) is not None:
            contacts_of[p.message_id].setdefault(contact_id, p.address)

    all_contacts = {c for per in contacts_of.values() for c in per}
    company_of = dict(
        Contact.objects.filter(pk__in=all_contacts, company__isnull=False).values_list("pk", "company_id")
    )
    limit = mailbox.deal_link_limit if mailbox is not None else DEFAULT_DEAL_LINK_LIMIT
    deals_of = _open_deals(contact_ids=all_contacts, limit=limit)

    # First writer wins a (message, record) pair: the most telling reason goes first (a reply to
    # a CRM send says more than the address that also matches), the thread's inherited links last.
    links = _reply_links(mailbox=mailbox, messages=messages, contacts_of=contacts_of)
    for message_id, per in contacts_of.items():
        deal_ids: list[int] = []
        for contact_id, address in per.items():
            links.append(EmailLink(message_id=message_id, contact_id=contact_id, reason=reason, via=address))
            if (company_id := company_of.get(contact_id)) is not None:
                links.append(
                    EmailLink(
                        message_id=message_id, company_id=company_id, reason=LinkReason.COMPANY, via=address
                    )
                )
            for deal_id in deals_of.get(contact_id, []):
                if deal_id not in deal_ids:
                    deal_ids.append(deal_id)
                    links.append(
                        EmailLink(message_id=message_id, deal_id=deal_id, reason=LinkReason.DEAL, via=address)
                    )
        # Deals are ranked per contact; a message with several contacts keeps `limit` in all.
        if len(deal_ids) > limit:
            drop = set(deal_ids[limit:])
            links = [
                link
                for link in links
                if link.message_id != message_id or link.deal_id not in drop or link.reason != LinkReason.DEAL
            ]

    links.extend(_thread_links(messages=messages))
    # Every link above is to one of `messages`; it carries the message's time for the timelines.
    sent_at_of = {m.pk: m.sent_at for m in messages}
    for link in links:
        link.sent_at = sent_at_of[link.message_id]
    EmailLink.objects.bulk_create(links, ignore_conflicts=True, batch_size=1000)

    linked = set(EmailLink.objects.filter(message_id__in=ids).values_list("message_id", flat=True).distinct())
    copies = MailboxMessage.objects.filter(message_id__in=linked, triage=MailboxMessage.Triage.PENDING)
    if mailbox is not None:
        copies = copies.filter(mailbox=mailbox)
    copies.update(triage=MailboxMessage.Triage.LINKED)
    return EmailLink.objects.filter(message_id__in=ids).count() - before


def _apply_unknown_policy(
    *, mailbox: Mailbox, ids: list[int], external: list[EmailParticipant], known: dict[str, int]
) -> None:
    if mailbox.unknown_policy == UnknownAddressPolicy.NEVER:
        return
    directions = dict(
        MailboxMessage.objects.filter(mailbox=mailbox, message_id__in=ids).values_list(
            "message_id", "direction"
        )
    )
    candidates: dict[str, str] = {}
    for p in external:
        if p.address in known or p.address in candidates:
            continue
        outgoing = directions.get(p.message_id) == Direction.OUTGOING
        if mailbox.unknown_policy == UnknownAddressPolicy.SENT:
            # Only the people the rep wrote to: a cold inbound (newsletters, spam) creates nobody.
            if outgoing and p.role != ParticipantRole.FROM:
                candidates[p.address] = p.name
        elif mailbox.unknown_policy == UnknownAddressPolicy.ALL:
            candidates[p.address] = p.name
    if candidates:
        _create_unknown(mailbox=mailbox, candidates=candidates, known=known)


def _open_deals(*, contact_ids: set[int], limit: int) -> dict[int, list[int]]:
    """Contact -> its most recently created open deals (as primary contact or participant),
    newest first, at most `limit`."""
    if not contact_ids or limit <= 0:
        return {}
    found: dict[int, list[tuple]] = defaultdict(list)
    primary = Deal.objects.filter(contact_id__in=contact_ids, status=DealStatus.OPEN).values_list(
        "contact_id", "created_at", "pk"
    )
    through = Deal.participants.through
    shared = through.objects.filter(contact_id__in=contact_ids, deal__status=DealStatus.OPEN).values_list(
        "contact_id", "deal__created_at", "deal_id"
    )
    for contact_id, created_at, deal_id in [*primary, *shared]:
        found[contact_id].append((created_at, deal_id))
    result = {}
    for contact_id, rows in found.items():
        ordered = sorted(set(rows), key=lambda row: (row[0], row[1]), reverse=True)
        result[contact_id] = [deal_id for _, deal_id in ordered[:limit]]
    return result


def _reply_links(
    *, mailbox: Mailbox | None, messages: Sequence[EmailMessage], contacts_of: dict[int, dict[int, str]]
) -> list[EmailLink]:
    """A reply to a CRM send goes on the send's contact and deal, and is an `Email Replied`
    event on the contact who wrote it (the send's contact when the reply came from an address
    we do not know: an assistant, a personal address)."""
    targets = _reply_targets(messages)
    if not targets:
        return []
    own = {address_normalise(mailbox.email_address)} if mailbox is not None else set()
    links, events = [], []
    for message in messages:
        send = targets.get(message.pk)
        if send is None:
            continue
        via = send.header_message_id
        if send.contact_id is not None:
            links.append(
                EmailLink(message_id=message.pk, contact_id=send.contact_id, reason=LinkReason.REPLY, via=via)
            )
        if send.deal_id is not None:
            links.append(
                EmailLink(message_id=message.pk, deal_id=send.deal_id, reason=LinkReason.REPLY, via=via)
            )
        sender = address_normalise(message.from_address)
        if sender in own:
            continue  # the rep's own follow-up in the thread is not a reply from the customer
        if message.auth_failure:
            continue  # a From the receiving server refused: linked and shown, not counted as a reply
        replier = next(
            (c for c, address in contacts_of.get(message.pk, {}).items() if address == sender),
            send.contact_id,
        )
        if replier is None:
            continue
        events.append(
            EmailEvent(
                contact_id=replier,
                name=EMAIL_REPLIED,
                key=f"reply:{message.message_key}",
                timestamp=message.sent_at,
                properties={
                    "subject": message.subject,
                    "send_id": send.pk,
                    "deal_id": send.deal_id,
                    "reply_message_id": message.pk,
                },
            )
        )
    if events:
        email_events_record(events=events)
    return links


def _thread_links(*, messages: Sequence[EmailMessage]) -> list[EmailLink]:
    """A message joins the records its thread is already on (a colleague's reply in a thread on
    a deal belongs on the deal although they wrote to nobody we know)."""
    by_thread: dict[int, list[int]] = defaultdict(list)
    for message in messages:
        by_thread[message.thread_id].append(message.pk)
    existing = EmailLink.objects.filter(message__thread_id__in=by_thread.keys()).exclude(
        message_id__in=[m.pk for m in messages]
    )
    links = []
    seen = set()
    for thread_id, contact_id, company_id, deal_id in existing.values_list(
        "message__thread_id", "contact_id", "company_id", "deal_id"
    ):
        for message_id in by_thread[thread_id]:
            key = (message_id, contact_id, company_id, deal_id)
            if key in seen:
                continue
            seen.add(key)
            links.append(
                EmailLink(
                    message_id=message_id,
                    contact_id=contact_id,
                    company_id=company_id,
                    deal_id=deal_id,
                    reason=LinkReason.THREAD,
                    via=f"thread:{thread_id}",
                )
            )
    return links
