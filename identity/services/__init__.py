"""Identity's writes, one topic module each; the public functions are re-exported here.

stitching (the ingest processor), merging (automatic merges, splits, the contact-merge hook),
hot (hot-deal rules and alerts), blocked_values, projection (events onto contacts, rollups, the
events-delete and contact-change hooks), rebuild (reset and replay of the graph) and erasure
(what privacy erases of a person here).
"""

from identity.services.blocked_values import (
    blocked_value_add,
    blocked_value_remove,
)
from identity.services.erasure import (
    identity_warnings_delete,
    person_contact_events,
    person_event_count,
    person_event_ids,
    person_events,
    person_identifier_values,
    person_identities,
    split_rules_delete,
)
from identity.services.hot import (
    hot_deals_after_merge,
    hot_deals_notify,
    hot_rule_create,
    hot_rule_delete,
    hot_rule_update,
)
from identity.services.merging import (
    contact_merge_prepare,
    contacts_merge_auto,
    identifier_hashes,
    merge_order,
    merge_split,
    split_rule_between,
)
from identity.services.projection import (
    activity_key,
    consent_state,
    daily_activity_add,
    daily_activity_recompute,
    daily_activity_recompute_days,
    event_attribution,
    event_path,
    events_forget,
    first_touch,
    first_touch_find,
    profile_updates_mark,
)
from identity.services.rebuild import (
    first_touch_backfill,
    identity_replay,
    identity_reset,
    rebuild_pending,
)
from identity.services.stitching import (
    CONTACT_REF_PREFIX,
    caps,
    contact_ref,
    event_identifiers,
    events_process,
    identifiers_lock,
    lock_hash,
    normalise,
)

__all__ = [
    "CONTACT_REF_PREFIX",
    "activity_key",
    "blocked_value_add",
    "blocked_value_remove",
    "caps",
    "consent_state",
    "contact_merge_prepare",
    "contact_ref",
    "contacts_merge_auto",
    "daily_activity_add",
    "daily_activity_recompute",
    "daily_activity_recompute_days",
    "event_attribution",
    "event_identifiers",
    "event_path",
    "events_forget",
    "events_process",
    "first_touch",
    "first_touch_backfill",
    "first_touch_find",
    "hot_deals_after_merge",
    "hot_deals_notify",
    "hot_rule_create",
    "hot_rule_delete",
    "hot_rule_update",
    "identifier_hashes",
    "identifiers_lock",
    "identity_replay",
    "identity_reset",
    "identity_warnings_delete",
    "lock_hash",
    "merge_order",
    "merge_split",
    "normalise",
    "person_contact_events",
    "person_event_count",
    "person_event_ids",
    "person_events",
    "person_identifier_values",
    "person_identities",
    "profile_updates_mark",
    "rebuild_pending",
    "split_rule_between",
    "split_rules_delete",
]
