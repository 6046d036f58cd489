"""Reads of the identity app."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet

from cdp_crm.errors import NotFound
from contacts import permissions
from contacts.models import ContactMerge

# --- merge log


def merge_list(*, user: AbstractBaseUser, contact_id: int | None = None) -> QuerySet[ContactMerge]:
    """The merge log, newest first; with `contact_id`, the merges that contact won or lost.
    Every CRM role reads it (splitting is Admin only)."""
    permissions.ensure_can_read(user)
    merges = ContactMerge.objects.select_related("winner", "loser", "actor", "split_by").order_by(
        "-created_at", "-pk"
    )
    if contact_id is not None:
        merges = merges.filter(Q(winner_id=contact_id) | Q(loser_id=contact_id))
    return merges


def merge_get(*, user: AbstractBaseUser, merge_id: int) -> ContactMerge:
    merge = merge_list(user=user).filter(pk=merge_id).first()
    if merge is None:
        raise NotFound(f"Merge {merge_id} does not exist.")
    return merge
