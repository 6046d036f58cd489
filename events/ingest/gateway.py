"""The tracking API served straight from WSGI, in front of Django's handler (cdp_crm/wsgi.py).

A /v1/* request costs ~2 ms of CPU through Django; its request/response objects, the ten
middlewares and the URL resolver were a quarter of that for an endpoint that uses none of them
(no session, user, CSRF, messages or templates: docs/benchmarks.md). The gateway calls the same
`events.ingest.endpoint.ingest_request` as the Django view and adds what the middlewares would
have added to its answers. Anything it does not handle the same way goes to Django untouched: other paths,
a Host that is not allowed (Django answers 400), an HTTP request that SECURE_SSL_REDIRECT would
redirect, settings.DISALLOWED_USER_AGENTS in use.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable

from django.conf import settings
from django.core import signals
from django.http.request import split_domain_port, validate_host
from django.utils.csp import build_policy

from events.ingest.endpoint import PATH_PATTERN, Reply, ingest_request

logger = logging.getLogger(__name__)

_PATH = re.compile("^/" + PATH_PATTERN.removeprefix("^"))
REASONS = {
    200: "200 OK",
    204: "204 No Content",
    400: "400 Bad Request",
    401: "401 Unauthorized",
    403: "403 Forbidden",
    405: "405 Method Not Allowed",
    413: "413 Content Too Large",
    415: "415 Unsupported Media Type",
    429: "429 Too Many Requests",
    500: "500 Internal Server Error",
    503: "503 Service Unavailable",
}
# bench/ingest.py's floor (routed only when settings.BENCH_URLS is on): the cheapest answer this
# server can give, a fixed 200 from the WSGI callable with no Django and no work.
BENCH_FLOOR_PATH = "/bench/wsgi-ok"
BENCH_FLOOR_HEADERS = [("Content-Type", "application/json"), ("Content-Length", "16")]
SERVER_ERROR = Reply(
    500,
    b'{"success":false,"error":{"code":"server_error","message":"internal error; retry later"}}',
    [("Content-Type", "application/json"), ("Access-Control-Allow-Origin", "*")],
)


def security_headers(*, secure: bool) -> list[tuple[str, str]]:
    """What SecurityMiddleware, CrossOriginOpenerPolicy, XFrameOptionsMiddleware and
    ContentSecurityPolicyMiddleware add to the API's answers under the current settings."""
    headers = []
    if secure and settings.SECURE_HSTS_SECONDS:
        hsts = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            hsts += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            hsts += "; preload"
        headers.append(("Strict-Transport-Security", hsts))
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers.append(("X-Content-Type-Options", "nosniff"))
    if policy := settings.SECURE_REFERRER_POLICY:
        policy = policy if isinstance(policy, str) else ",".join(policy)
        headers.append(("Referrer-Policy", ",".join(v.strip() for v in policy.split(","))))
    if coop := settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers.append(("Cross-Origin-Opener-Policy", coop))
    headers.append(("X-Frame-Options", settings.X_FRAME_OPTIONS.upper()))
    if settings.SECURE_CSP:
        # ContentSecurityPolicyMiddleware's header (no nonce is used on the API)
        headers.append(("Content-Security-Policy", build_policy(settings.SECURE_CSP)))
    return headers


class IngestGateway:
    """WSGI application: /v1/* tracking requests here, everything else to `django_app`."""

    def __init__(self, django_app: Callable) -> None:
        self.django_app = django_app
        self._allowed_hosts: dict[str, bool] = {}
        self._headers = {secure: security_headers(secure=secure) for secure in (False, True)}
        self._bench_floor = BENCH_FLOOR_PATH if settings.BENCH_URLS else None

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == self._bench_floor:
            start_response("200 OK", BENCH_FLOOR_HEADERS)
            return [b'{"success":true}']
        match = _PATH.match(path)
        if match is None or not self._handles(environ):
            return self.django_app(environ, start_response)
        signals.request_started.send(sender=self.__class__, environ=environ)
        try:
            reply = self._reply(environ, match["kind"])
        finally:
            # Django's end-of-request housekeeping: connections past their age or broken by an
            # error are closed here, as after any Django request.
            signals.request_finished.send(sender=self.__class__)
        headers = [*reply.headers, *self._headers[self._secure(environ)]]
        headers.append(("Content-Length", str(len(reply.body))))
        start_response(REASONS.get(reply.status, str(reply.status)), headers)
        return [b""] if environ.get("REQUEST_METHOD") == "HEAD" else [reply.body]

    def _reply(self, environ: dict, kind: str) -> Reply:
        try:
            content_length = environ.get("CONTENT_LENGTH", "")
            stream = environ["wsgi.input"]
            return ingest_request(
                method=environ["REQUEST_METHOD"].upper(),
                kind=kind,
                origin=environ.get("HTTP_ORIGIN", ""),
                content_length=content_length,
                read=lambda size: _read(stream, content_length, size),
                content_encoding=environ.get("HTTP_CONTENT_ENCODING", ""),
                authorization=environ.get("HTTP_AUTHORIZATION", ""),
                header_key=environ.get("HTTP_X_WRITE_KEY", ""),
                query_string=environ.get("QUERY_STRING", ""),
            )
        except Exception:
            logger.exception("tracking API request failed")
            return SERVER_ERROR

    def _handles(self, environ: dict) -> bool:
        if settings.DISALLOWED_USER_AGENTS:
            return False
        if settings.SECURE_SSL_REDIRECT and not self._secure(environ):
            return False
        return self._host_allowed(environ)

    def _host_allowed(self, environ: dict) -> bool:
        # The Host check Django's request.get_host() makes (USE_X_FORWARDED_HOST: Django decides).
        if settings.USE_X_FORWARDED_HOST:
            return False
        host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
        allowed = self._allowed_hosts.get(host)
        if allowed is None:
            allowed_hosts = settings.ALLOWED_HOSTS
            if settings.DEBUG and not allowed_hosts:
                allowed_hosts = [".localhost", "127.0.0.1", "[::1]"]
            domain, _port = split_domain_port(host)
            allowed = bool(domain) and validate_host(domain, allowed_hosts)
            if len(self._allowed_hosts) > 1000:
                self._allowed_hosts.clear()
            self._allowed_hosts[host] = allowed
        return allowed

    @staticmethod
    def _secure(environ: dict) -> bool:
        header = settings.SECURE_PROXY_SSL_HEADER
        if header:
            name, value = header
            forwarded = environ.get(name)
            if forwarded is not None:
                return forwarded.split(",", 1)[0].strip() == value
        return environ.get("wsgi.url_scheme") == "https"


def _read(stream, content_length: str, size: int) -> bytes:
    """Read at most `size` bytes and never past the declared Content-Length (as Django's
    LimitedStream)."""
    try:
        declared = int(content_length or 0)
    except ValueError:
        declared = 0
    return stream.read(min(size, declared)) if declared > 0 else b""
