from django.http import HttpRequest
from django.urls import reverse

from accounts.roles import primary_role
from workspace.can import may

# (label, url name, icon, url prefix that marks the item active, rule in workspace.can or None for
# every signed-in user): an item whose page would answer 403 is not shown.
NAV = [
    ("Home", "home", "house", None, None),
    ("Contacts", "contacts:list", "people", "/contacts/", "contacts"),
    ("Companies", "contacts:company_list", "building", "/companies/", "companies"),
    ("Pipeline", "pipeline:board", "kanban", "/pipeline/", "pipeline"),
    ("Tasks", "pipeline:tasks", "check2-square", "/tasks/", "tasks"),
    # Each user's own mail that matched no record (every role may connect a mailbox).
    ("Email", "mail:unmatched", "envelope", "/mail/", None),
    ("Reports", "activities:reports", "bar-chart", "/reports/", "reports"),
    ("Segments", "segments:list", "funnel", "/segments/", "segments"),
    ("Events", "events:list", "activity", "/events/", "events"),
    ("Sources", "events:sources", "plug", "/sources/", "sources"),
    ("Predictions", "predictions:list", "graph-up-arrow", "/settings/predictions/", "predictions"),
    ("Settings", "accounts:settings", "gear", "/settings/", None),
]


def navigation(request: HttpRequest) -> dict:
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    path = request.path
    items = []
    for label, name, icon, prefix, rule in NAV:
        if rule is not None and not may(request.user, rule):
            continue
        url = reverse(name)
        active = path.startswith(prefix) if prefix else path == url
        items.append({"label": label, "url": url, "icon": icon, "active": active})
    return {"nav_items": items, "user_role": primary_role(request.user)}
