"""Mail's writes, one topic module each; the public functions are re-exported here."""

from mail.services.events import EMAIL_EVENTS, EMAIL_SOURCE_NAME, EmailEvent, email_events_record
from mail.services.matching import (
    NeverLogRules,
    address_normalise,
    contacts_by_address,
    messages_link,
    never_log_rules,
    never_logged,
)

__all__ = [
    "EMAIL_EVENTS",
    "EMAIL_SOURCE_NAME",
    "EmailEvent",
    "NeverLogRules",
    "address_normalise",
    "contacts_by_address",
    "email_events_record",
    "messages_link",
    "never_log_rules",
    "never_logged",
]
