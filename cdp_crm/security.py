"""Small security helpers shared by the apps (no domain code)."""

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    """The address a request came from, for login throttling.

    REMOTE_ADDR, unless the app runs behind a proxy (DJANGO_BEHIND_PROXY): then the right-most
    X-Forwarded-For entry, the one our proxy appended. Entries to its left are whatever the client
    sent and must not be trusted, or anyone could pick a fresh address for every guess.
    """
    if settings.BEHIND_PROXY:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        last = forwarded.rsplit(",", 1)[-1].strip()
        if last:
            return last
    return request.META.get("REMOTE_ADDR", "")
