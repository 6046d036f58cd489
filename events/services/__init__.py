"""The events app's writes, by topic: `queue` (storing events and draining the ingest queue),
`sources` (sources, their privacy settings and the cached write-key lookup), `retention` and
`erasure` (deleting events), `partitions` (the monthly partitions of the event log) and
`partition_migration` (moving an unpartitioned event log into them, online). Other apps import from here."""

from events.services.erasure import (
    events_delete,
    events_delete_for_identifiers,
    rejected_events_delete_mentioning,
)
from events.services.partitions import event_partitions_ensure
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
    "event_partitions_ensure",
    "events_delete",
    "events_delete_for_identifiers",
    "events_delete_hooks",
    "events_retention_enforce",
    "events_store",
    "ingest_batches_forget",
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
