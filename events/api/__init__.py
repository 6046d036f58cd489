"""The events app's DRF API (sources); the tracking endpoint is events.ingest, not DRF."""
