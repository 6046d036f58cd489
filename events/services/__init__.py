"""The events app's writes, by topic: `queue` (storing events and draining the ingest queue),
`sources` (sources, their privacy settings and the cached write-key lookup), `retention` and
`erasure` (deleting events), `suppression` (erased people's identifiers, dropped at ingestion),
`identifiers` (how phones and external ids are written when compared: the rule identity stitching
stores them by and the suppression check reads messages by), `partitions` (the monthly partitions
of the event log), `partition_migration` (moving an unpartitioned event log into them, online) and
`caches` (forgetting the per-process ingestion caches). Other apps import from here."""

from events.services.caches import ingest_caches_reset
from events.services.erasure import (
    events_delete,
    events_delete_for_identifiers,
    rejected_events_delete_mentioning,
)
from events.services.identifiers import external_ids, phone_e164
from events.services.partitions import event_partitions_ensure
from events.services.queue import (
    event_dedup_expire,
    events_store,
    ingest_batches_forget,
    ingest_queue_process,
    ingest_queue_retry,
)
from events.services.retention import events_delete_hooks, events_retention_enforce
from events.services.server import ServerEventRejected, internal_source, server_events_store
from events.services.sources import (
    source_create,
    source_for_write_key,
    source_privacy_update,
    source_rotate_write_key,
    source_save,
    source_update,
)
from events.services.suppression import (
    suppressed_count,
    suppressed_count_add,
    suppression_add,
    value_hash,
)

__all__ = [
    "ServerEventRejected",
    "event_dedup_expire",
    "event_partitions_ensure",
    "events_delete",
    "events_delete_for_identifiers",
    "events_delete_hooks",
    "events_retention_enforce",
    "events_store",
    "external_ids",
    "ingest_batches_forget",
    "ingest_caches_reset",
    "ingest_queue_process",
    "ingest_queue_retry",
    "internal_source",
    "phone_e164",
    "rejected_events_delete_mentioning",
    "server_events_store",
    "source_create",
    "source_for_write_key",
    "source_privacy_update",
    "source_rotate_write_key",
    "source_save",
    "source_update",
    "suppressed_count",
    "suppressed_count_add",
    "suppression_add",
    "value_hash",
]
