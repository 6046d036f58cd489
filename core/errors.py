"""Domain exceptions raised by services; core.api.exception_handler maps them to HTTP answers,
and `domain_errors` does the same for HTML views."""

import functools
from collections.abc import Callable

from django.core.exceptions import PermissionDenied
from django.http import Http404


class DomainError(Exception):
    http_status = 400
    code = "invalid"

    def __init__(
        self, message: str, *, fields: dict | None = None, code: str | None = None, data: dict | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        # Facts a client acts on without parsing the message (say, how many deals block a delete).
        self.data = data or {}
        if code:
            self.code = code


class NotFound(DomainError):
    http_status = 404
    code = "not_found"


class Forbidden(DomainError):
    http_status = 403
    code = "forbidden"


class Conflict(DomainError):
    http_status = 409
    code = "conflict"


def domain_errors[V: Callable](view: V) -> V:
    """For HTML views: Forbidden -> 403, NotFound -> 404 (Django's error pages)."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except Forbidden as exc:
            raise PermissionDenied(exc.message) from exc
        except NotFound as exc:
            raise Http404(exc.message) from exc

    return wrapper  # type: ignore[return-value]
