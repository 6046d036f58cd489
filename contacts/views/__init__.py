"""The contacts UI: `records` (contact and company lists, detail, forms), `custom_fields`
(Settings), `imports` (CSV import) and `duplicates` (duplicate list and merge)."""
