"""Test factories: small functions with sensible defaults, one module per app.

`*_payload` builds a Segment message as a client sends it to /v1/* (a dict, nothing stored);
`stored_*` writes rows as the API and the stitching worker would have left them; `make_*` creates
a record through its app's services (or directly where the service is not the point)."""

from tests.factories.accounts import PASSWORD, logs_in, make_admin, make_user, user_model
from tests.factories.contacts import make_company, make_contact
from tests.factories.events import (
    T0,
    alias_payload,
    event_source,
    group_payload,
    identify_payload,
    page_payload,
    send,
    store_messages,
    track_payload,
)
from tests.factories.identity import (
    add_rollup,
    default_hot_rule,
    link_identity,
    profile_update,
    stored_contact_event,
    stored_page,
    stored_track,
)
from tests.factories.mail import (
    MAIL_T0,
    make_attachment,
    make_link,
    make_mailbox,
    make_message,
    make_outgoing,
    make_thread,
)
from tests.factories.pipeline import make_deal, make_pipeline, make_reason, stages_of
from tests.factories.segments import make_segment

__all__ = [
    "MAIL_T0",
    "PASSWORD",
    "T0",
    "add_rollup",
    "alias_payload",
    "default_hot_rule",
    "event_source",
    "group_payload",
    "identify_payload",
    "link_identity",
    "logs_in",
    "make_admin",
    "make_attachment",
    "make_company",
    "make_contact",
    "make_deal",
    "make_link",
    "make_mailbox",
    "make_message",
    "make_outgoing",
    "make_pipeline",
    "make_reason",
    "make_segment",
    "make_thread",
    "make_user",
    "page_payload",
    "profile_update",
    "send",
    "stages_of",
    "store_messages",
    "stored_contact_event",
    "stored_page",
    "stored_track",
    "track_payload",
    "user_model",
]
