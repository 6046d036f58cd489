"""The floor every app stands on: errors, request parameters, pagination, storable text, CSV, and
the REST API's shared plumbing. Plain Python (not a Django app): it imports no app of this
project, and every app may import it (import-linter's "core imports no app" contract)."""
