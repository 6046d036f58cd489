"""Segments."""

from segments import services as segment_services
from segments.models import Segment


def make_segment(definition: dict, *, name: str = "S", **fields) -> Segment:
    """A segment created through the service (by the system), not yet computed."""
    return segment_services.segment_create(actor=None, name=name, definition=definition, **fields)
