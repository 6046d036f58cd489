"""Computed trait writes: `definitions` (validate, create, update, delete) and `computing` (the
realtime refresh, the full recompute, window expiry). Callers import from here."""

from traits.services.computing import (
    company_rollups_refresh,
    traits_contacts_deleting,
    traits_recompute,
    traits_refresh_contacts,
    traits_windows_expire,
)
from traits.services.definitions import (
    trait_definition_clean,
    trait_definition_create,
    trait_definition_delete,
    trait_definition_update,
    trait_recompute_request,
)

__all__ = [
    "company_rollups_refresh",
    "trait_definition_clean",
    "trait_definition_create",
    "trait_definition_delete",
    "trait_definition_update",
    "trait_recompute_request",
    "traits_contacts_deleting",
    "traits_recompute",
    "traits_refresh_contacts",
    "traits_windows_expire",
]
