"""The events app's writes, by topic: `queue` (storing events and draining the ingest queue),
`sources` (sources, their privacy settings and the cached write-key lookup), `retention` and
`erasure` (deleting events), `caches` (forgetting the per-process ingestion caches). Other apps
import from here."""

from events.services.caches import ingest_caches_reset
from events.services.erasure import (
    events_delete,
    events_delete_for_identifiers,
    rejected_events_delete_mentioning,
)
from events.services.queue import (
    event_dedup_expire,
    events_store,
    ingest_batches_forget,
    ingest_queue_process,
    ingest_queue_retry,
)
from events.services.retention import events_delete_hooks, events_retention_enforce
from events.services.sources import (
    source_create,
    source_for_write_key,
    source_privacy_update,
    source_rotate_write_key,
    source_save,
    source_update,
)

__all__ = [
    "event_dedup_expire",
    "events_delete",
    "events_delete_for_identifiers",
    "events_delete_hooks",
    "events_retention_enforce",
    "events_store",
    "ingest_batches_forget",
    "ingest_caches_reset",
    "ingest_queue_process",
    "ingest_queue_retry",
    "rejected_events_delete_mentioning",
    "source_create",
    "source_for_write_key",
    "source_privacy_update",
    "source_rotate_write_key",
    "source_save",
    "source_update",
]
