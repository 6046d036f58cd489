"""Sources (Settings → Sources): creating and changing them, their privacy settings, and the
write-key lookup the tracking endpoint makes on every request (cached here, so the writes that
change a key forget it)."""

import logging
import time
from collections.abc import Sequence

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from core.errors import DomainError
from events import permissions
from events.models import Source, SourceKind, new_write_key

logger = logging.getLogger(__name__)

MAX_RETENTION_DAYS = 36500

_SOURCE_CACHE: dict[str, tuple[float, Source | None]] = {}
# Write keys are looked up on every request; a short cache saves a query per event and a disabled
# source stops being accepted within this many seconds.
SOURCE_CACHE_SECONDS = 10.0


def source_for_write_key(*, write_key: str) -> Source | None:
    now = time.monotonic()
    cached = _SOURCE_CACHE.get(write_key)
    if cached and now - cached[0] < SOURCE_CACHE_SECONDS:
        return cached[1]
    source = Source.objects.filter(write_key=write_key, enabled=True).first()
    if len(_SOURCE_CACHE) > 10_000:
        _SOURCE_CACHE.clear()
    _SOURCE_CACHE[write_key] = (now, source)
    return source


# `actor` is the user making the change, or None for the system (a management command), which
# skips the permission check.


def _forget_cached_source(write_key: str) -> None:
    """This process stops accepting a changed key at once, other processes within
    SOURCE_CACHE_SECONDS. Forgotten now and again on commit: a request in between may re-cache
    the row as it was before the commit."""

    def forget() -> None:
        _SOURCE_CACHE.pop(write_key, None)

    forget()
    transaction.on_commit(forget)


@transaction.atomic
def source_create(
    *,
    actor: AbstractBaseUser | None,
    name: str,
    kind: str = SourceKind.WEB,
    enabled: bool = True,
    allowed_origins: Sequence[str] = (),
) -> Source:
    permissions.ensure_can_manage_sources(actor)
    name = name.strip()
    if not name:
        raise DomainError("A source needs a name.", fields={"name": ["This field is required."]})
    if kind not in SourceKind.values:
        raise DomainError(f"Unknown source kind {kind!r}.", fields={"kind": ["Not a valid choice."]})
    return Source.objects.create(
        name=name, kind=kind, enabled=enabled, allowed_origins=list(dict.fromkeys(allowed_origins))
    )


@transaction.atomic
def source_update(
    *,
    actor: AbstractBaseUser | None,
    source: Source,
    name: str,
    kind: str,
    enabled: bool,
    allowed_origins: Sequence[str],
) -> Source:
    permissions.ensure_can_manage_sources(actor)
    name = name.strip()
    if not name:
        raise DomainError("A source needs a name.", fields={"name": ["This field is required."]})
    if kind not in SourceKind.values:
        raise DomainError(f"Unknown source kind {kind!r}.", fields={"kind": ["Not a valid choice."]})
    source = Source.objects.select_for_update().get(pk=source.pk)
    source.name = name
    source.kind = kind
    source.enabled = enabled
    source.allowed_origins = list(dict.fromkeys(allowed_origins))
    source.save(update_fields=["name", "kind", "enabled", "allowed_origins"])
    _forget_cached_source(source.write_key)
    return source


@transaction.atomic
def source_rotate_write_key(*, actor: AbstractBaseUser | None, source: Source) -> Source:
    """Give the source a new write key; the old one stops working (within the key cache's few
    seconds in other processes). Sites still sending with the old key get 401 until updated."""
    permissions.ensure_can_manage_sources(actor)
    source = Source.objects.select_for_update().get(pk=source.pk)
    old_key = source.write_key
    source.write_key = new_write_key()
    source.save(update_fields=["write_key"])
    _forget_cached_source(old_key)
    logger.info("write key of source %s rotated", source.pk)
    return source


@transaction.atomic
def source_save(
    *,
    actor: AbstractBaseUser | None,
    source: Source | None,
    name: str,
    kind: str = SourceKind.WEB,
    enabled: bool = True,
    allowed_origins: Sequence[str] = (),
    require_consent: bool = False,
    honor_gpc: bool = False,
    retention_days: int | None = None,
) -> Source:
    """Create (source=None) or update a source together with its privacy settings, atomically."""
    fields = {"name": name, "kind": kind, "enabled": enabled, "allowed_origins": allowed_origins}
    if source is None:
        source = source_create(actor=actor, **fields)
    else:
        source = source_update(actor=actor, source=source, **fields)
    return source_privacy_update(
        actor=actor,
        source=source,
        require_consent=require_consent,
        honor_gpc=honor_gpc,
        retention_days=retention_days,
    )


@transaction.atomic
def source_privacy_update(
    *,
    actor: AbstractBaseUser | None,
    source: Source,
    require_consent: bool,
    honor_gpc: bool,
    retention_days: int | None,
) -> Source:
    permissions.ensure_can_manage_sources(actor)
    if retention_days is not None and (
        type(retention_days) is not int or not 1 <= retention_days <= MAX_RETENTION_DAYS
    ):
        raise DomainError(
            "retention_days must be empty (keep forever) or 1 to 36500 days.",
            fields={"retention_days": [f"Ensure this value is between 1 and {MAX_RETENTION_DAYS}."]},
        )
    source = Source.objects.select_for_update().get(pk=source.pk)
    source.require_consent = bool(require_consent)
    source.honor_gpc = bool(honor_gpc)
    source.retention_days = retention_days
    source.save(update_fields=["require_consent", "honor_gpc", "retention_days"])
    return source
