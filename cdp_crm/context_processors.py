from django.http import HttpRequest
from django.urls import reverse

from accounts.roles import primary_role

# (label, url name, icon, url prefix that marks the item active)
NAV = [
    ("Home", "home", "house", None),
    ("Contacts", "contacts:list", "people", "/contacts/"),
    ("Companies", "contacts:company_list", "building", "/companies/"),
    ("Pipeline", "pipeline:board", "kanban", "/pipeline/"),
    ("Tasks", "pipeline:tasks", "check2-square", "/tasks/"),
    ("Reports", "activities:reports", "bar-chart", "/reports/"),
    ("Segments", "segments:list", "funnel", "/segments/"),
    ("Events", "events:list", "activity", "/events/"),
    ("Sources", "events:sources", "plug", "/sources/"),
    ("Settings", "accounts:settings", "gear", "/settings/"),
]


def navigation(request: HttpRequest) -> dict:
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    path = request.path
    items = []
    for label, name, icon, prefix in NAV:
        url = reverse(name)
        active = path.startswith(prefix) if prefix else path == url
        items.append({"label": label, "url": url, "icon": icon, "active": active})
    return {"nav_items": items, "user_role": primary_role(request.user)}
