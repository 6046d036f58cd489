"""The public ends of email tracking, loaded by the recipient's mail client: no login, no CSRF
(GET only, and they change nothing a forged request could abuse beyond recording an open)."""

import base64

from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.views.decorators.http import require_GET

from mail.services import tracking

# The smallest transparent GIF (1x1, 42 bytes).
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def _no_cache(response: HttpResponse) -> HttpResponse:
    # Every load must reach us (a cached pixel is an open we never see), and no proxy may store it.
    response["Cache-Control"] = "no-store, no-cache, must-revalidate, max-age=0, private"
    response["Pragma"] = "no-cache"
    response["Expires"] = "0"
    return response


@require_GET
@login_not_required
def open_pixel(request: HttpRequest, token: str) -> HttpResponse:
    """A 1x1 GIF, recording an open. An unknown token still gets the GIF, with status 404: the
    status is honest (nothing was recorded), and a mail client shows a broken-image icon for an
    error without an image body; the token space (192 bits) is not worth probing either way."""
    found = tracking.tracking_open(token=token, user_agent=request.headers.get("User-Agent", ""))
    response = HttpResponse(PIXEL, content_type="image/gif", status=200 if found else 404)
    # Webmail shows the image from its own origin: allow the cross-origin load.
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return _no_cache(response)


@require_GET
@login_not_required
def click(request: HttpRequest, token: str, position: int) -> HttpResponse:
    """Redirect to the link's stored URL, recording the click; anything unknown is a 404."""
    url = tracking.tracking_click(
        token=token, position=position, user_agent=request.headers.get("User-Agent", "")
    )
    if url is None:
        raise Http404("No such link.")
    response = HttpResponseRedirect(url)  # a stored http(s) URL (TrackedLink): never the request's
    response["Referrer-Policy"] = "no-referrer"
    return _no_cache(response)
