from collections.abc import Callable

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse

from cdp_crm import views


class DebugNotFoundMiddleware:
    """Under DEBUG, Django answers a 404 with its technical page, which lists every URL pattern of
    the app; `make run` turns DEBUG on, so anyone shown a dev box saw that dump. This renders the
    branded 404 (handler404) there too. Without DEBUG it does nothing: handler404 already answers,
    and tests (pytest-django turns DEBUG off) never meet it unless they turn DEBUG on."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # No view matched (no resolver_match): the 404 is Django's technical page. A 404 a view
        # built itself (an htmx partial, an API answer) is left as it is.
        if settings.DEBUG and response.status_code == 404 and request.resolver_match is None:
            return views.page_not_found(request, Http404())
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if settings.DEBUG and isinstance(exception, Http404):
            return views.page_not_found(request, exception)
        return None
