"""The privacy app's DRF API: `erasure` (erasing and exporting a person) and `urls`."""
