"""Every error page is the branded one, with a way back home (issue 19.8)."""

import pytest
from django.core.exceptions import SuspiciousOperation
from django.test import Client, RequestFactory
from django.urls import get_resolver

from tests.factories import make_user

HOME_LINK = b'href="/" data-testid="error-home"'


def assert_branded(response, code: int) -> str:
    html = response.content.decode()
    assert response.status_code == code
    assert 'data-testid="error-page"' in html and "cdp-crm" in html
    assert f'data-testid="error-code">{code}<' in html
    assert HOME_LINK in response.content
    return html


@pytest.fixture
def rita_client(client, db):
    client.force_login(make_user(role="Sales", username="rita"))
    return client


def test_a_page_no_url_matches_is_the_branded_404(rita_client):
    html = assert_branded(rita_client.get("/no-such-page/"), 404)
    assert "There is nothing here" in html


def test_a_record_that_is_gone_is_the_branded_404(rita_client):
    assert_branded(rita_client.get("/contacts/987654/"), 404)


@pytest.mark.parametrize("path", ["/no-such-page/", "/contacts/987654/"])
def test_under_debug_a_404_is_the_branded_page_not_the_url_pattern_dump(rita_client, settings, path):
    # `make run` sets DJANGO_DEBUG=1: Django's debug 404 lists every URL pattern of the app
    settings.DEBUG = True
    html = assert_branded(rita_client.get(path), 404)
    assert "URLconf" not in html and "contacts/<int:pk>/" not in html


def test_under_debug_a_missing_slash_still_redirects(rita_client, settings):
    settings.DEBUG = True
    response = rita_client.get("/contacts")
    assert response.status_code == 301 and response["Location"] == "/contacts/"


def test_under_debug_the_api_still_answers_json_for_an_unknown_path(rita_client, settings):
    settings.DEBUG = True
    response = rita_client.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_a_page_the_role_may_not_open_is_the_branded_403_with_the_reason(rita_client):
    html = assert_branded(rita_client.get("/events/"), 403)
    assert "Only Admin and Marketing see incoming events." in html


def test_a_server_error_is_the_branded_500(db):
    # the handler Django calls for an uncaught exception; it renders with no request context
    handler = get_resolver().resolve_error_handler(500)
    assert_branded(handler(RequestFactory().get("/contacts/")), 500)


def test_a_bad_request_is_the_branded_400(db):
    handler = get_resolver().resolve_error_handler(400)
    assert_branded(handler(RequestFactory().get("/"), SuspiciousOperation("bad")), 400)
    # and end to end: a Host header the app does not serve
    assert_branded(Client().get("/login/", HTTP_HOST="evil.example"), 400)


@pytest.mark.django_db
def test_a_csrf_failure_is_the_branded_page_with_a_way_back_to_the_form():
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user(role="Sales", username="rita"))
    # a form posted without its token (the page was open across a logout and login, say)
    response = client.post("/notifications/read-all/", HTTP_REFERER="http://testserver/notifications/")
    html = assert_branded(response, 403)
    assert "This form has expired" in html
    assert 'href="http://testserver/notifications/" data-testid="error-back"' in html
    # a referrer from elsewhere is no way back
    response = client.post("/notifications/read-all/", HTTP_REFERER="https://evil.example/")
    assert 'data-testid="error-back"' not in assert_branded(response, 403)
