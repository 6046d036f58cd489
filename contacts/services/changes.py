"""CRM edits that other apps react to. Contacts may import no other domain app, so the apps that
care register in settings.CONTACT_CHANGE_HOOKS: dotted paths to functions called as
`hook(contact_ids=[...])`, once the transaction that changed those contacts has committed (a
rolled-back edit tells nobody).

After commit rather than inside the transaction: the hook writes rows the segment worker locks
(identity's ProfileUpdate), and a request holding a contact's row lock while waiting for that
worker, which waits for the same contact's key lock to write a membership, would deadlock. The
price: a process that dies between the commit and the hook leaves the change to the scheduled
recompute (SEGMENT_REFRESH_INTERVAL_SECONDS) instead of the realtime path."""

from collections.abc import Iterable

from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string


def contacts_deleting(*, contact_ids: Iterable[int]) -> None:
    """Call the CONTACT_DELETE_HOOKS, inside the deleting transaction and before the delete:
    what points at the contacts is still there to read (a hook registers its own on_commit work
    for what must happen after)."""
    ids = sorted(set(contact_ids))
    if not ids:
        return
    # settings.CONTACT_DELETE_HOOKS wires this; segments provides segments.services.contacts_deleting.
    for path in getattr(settings, "CONTACT_DELETE_HOOKS", []):
        import_string(path)(contact_ids=ids)


def contacts_changed(*, contact_ids: Iterable[int | None]) -> None:
    """Call the CONTACT_CHANGE_HOOKS with these contacts after the current transaction commits."""
    ids = sorted({pk for pk in contact_ids if pk is not None})
    # settings.CONTACT_CHANGE_HOOKS wires this; identity provides
    # identity.services.projection.profile_updates_mark.
    paths = getattr(settings, "CONTACT_CHANGE_HOOKS", [])
    if not ids or not paths:
        return
    for path in paths:
        hook = import_string(path)
        transaction.on_commit(lambda hook=hook: hook(contact_ids=ids), robust=True)
