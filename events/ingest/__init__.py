"""The Segment-compatible tracking endpoint (/v1/*) and what it runs on: `endpoint` (the request
handling), `parse` (decoding and validating messages), `limits` (admission control),
`suppression` (erased people's identifiers), `group_commit` (batching concurrent stores into one
transaction), `gateway` (serving it straight from WSGI) and `urls`."""
