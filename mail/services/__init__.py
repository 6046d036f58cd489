"""Mail's writes, one topic module each; the public functions are re-exported here."""

from mail.services.events import EMAIL_EVENTS, EMAIL_SOURCE_NAME, EmailEvent, email_events_record

__all__ = ["EMAIL_EVENTS", "EMAIL_SOURCE_NAME", "EmailEvent", "email_events_record"]
