import types

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.http import HttpResponse
from django.test import Client


class GatewayHandler:
    """Calls the production WSGI application (cdp_crm.wsgi: the ingest gateway in front of
    Django) the way a server does, and gives the test client an HttpResponse of its answer."""

    def __call__(self, environ):
        from cdp_crm.wsgi import application

        captured = {}

        def start_response(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers

        # As Django's own test handler: the test's connection (inside its transaction) is kept.
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            body = b"".join(application(environ, start_response))
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)
        response = HttpResponse(body, status=int(captured["status"].split()[0]))
        del response["Content-Type"]
        for key, value in captured["headers"]:
            response[key] = value
        response.wsgi_request = types.SimpleNamespace()
        response.raw_headers = captured["headers"]
        return response


class GatewayClient(Client):
    def __init__(self, **defaults):
        super().__init__(**defaults)
        self.handler = GatewayHandler()


@pytest.fixture(params=["django-view", "wsgi-gateway"])
def api_client(request):
    """The tracking API through Django's stack (its view) and through the WSGI gateway that
    serves it in production: every API test runs against both."""
    return Client() if request.param == "django-view" else GatewayClient()
