"""Thin Celery tasks: ids in, services do the work, deleted rows are ignored."""

from celery import shared_task
from django.db import OperationalError


@shared_task(ignore_result=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=8)
def traits_recompute(trait_ids: list[int] | None = None) -> None:
    """A full recompute (on a definition's save, on the Recompute button, and nightly), then the
    changed contacts are queued for the realtime path so segments on the traits follow."""
    from identity.services import profile_updates_mark
    from traits import services

    changed = services.traits_recompute(trait_ids=trait_ids)
    profile_updates_mark(contact_ids=sorted(changed))


@shared_task(ignore_result=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=8)
def traits_windows_expire() -> None:
    """Beat: values whose window lost an event are refreshed; segments follow through ProfileUpdate."""
    from identity.services import profile_updates_mark
    from traits import services

    changed = services.traits_windows_expire()
    profile_updates_mark(contact_ids=sorted(changed))
