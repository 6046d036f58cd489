"""One answer to "may this user open X?": for the sidebar, for templates and for views.

Each rule names the predicate the page's own view checks (in the owning app's `permissions`
module), so a link is shown exactly when the page behind it opens: a Sales user no longer sees an
Events link that answers 403 (issue 19.8). Rules are about a role and a kind of page; rules about
one record (this contact, that deal) stay with the view that has the record.

In templates: `{% load can %}{% may "segments_manage" %}…{% else %}…{% endmay %}`; a name that is
not in RULES fails when the template compiles, not silently at render.
"""

from collections.abc import Callable

from django.contrib.auth.models import AbstractBaseUser

from accounts.roles import is_admin
from contacts import permissions as contacts
from events import permissions as events
from pipeline import permissions as pipeline
from predictions import permissions as predictions
from scoring import permissions as scoring
from segments import permissions as segments
from traits import permissions as traits

Rule = Callable[[AbstractBaseUser], bool]

RULES: dict[str, Rule] = {
    # pages in the sidebar
    "contacts": contacts.can_read,
    "companies": contacts.can_read,
    "pipeline": pipeline.can_read,
    "tasks": pipeline.can_read,
    "reports": pipeline.can_read,
    "segments": segments.can_read,
    "predictions": predictions.can_read,
    "events": events.can_view_events,
    "sources": events.can_view_sources,
    # actions and the pages behind them
    "contacts_create": contacts.can_create,
    "contacts_import": contacts.can_import,
    "contacts_merge": contacts.can_merge,
    "custom_fields": contacts.can_manage_custom_fields,
    "identity_merges": contacts.can_read,
    "pipeline_configure": pipeline.can_configure,
    "activities_write": pipeline.can_write,
    "segments_manage": segments.can_manage,
    "scoring_manage": scoring.can_manage,
    "predictions_manage": predictions.can_manage,
    "traits_manage": traits.can_manage,
    "sources_manage": events.can_manage_sources,
    "events_retry": events.can_retry_events,
    # Admin-only settings pages: their views check is_admin themselves.
    "identity_settings": is_admin,
    "erasures": is_admin,
    "users_manage": is_admin,
}


def may(user: AbstractBaseUser | None, rule: str) -> bool:
    """True when `user` may use what `rule` names. An unknown name is a programming error."""
    check = RULES[rule]
    return user is not None and user.is_authenticated and check(user)
