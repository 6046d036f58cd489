"""Login throttling and the Content-Security-Policy."""

import re
from pathlib import Path

import pytest
from django.conf import settings

from tests.factories import PASSWORD, logs_in, make_user

TEMPLATES = Path(settings.BASE_DIR) / "templates"


@pytest.mark.django_db
def test_five_wrong_passwords_lock_that_username_from_that_address(client):
    make_user(username="dana")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = client.post("/login/", {"username": "dana", "password": "wrong"})
        assert response.status_code == 200  # the form again, with its error
    response = client.post("/login/", {"username": "dana", "password": "wrong"})
    assert response.status_code == 429
    assert "Too many failed log-in attempts" in response.content.decode()
    # locked: even the right password is refused now, and the session stays anonymous
    response = client.post("/login/", {"username": "dana", "password": PASSWORD})
    assert response.status_code == 429 and "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_a_lockout_does_not_reach_other_addresses_or_other_users(client):
    make_user(username="erin")
    make_user(username="fred")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/login/", {"username": "erin", "password": "wrong"}, REMOTE_ADDR="203.0.113.9")
    assert (
        client.post(
            "/login/", {"username": "erin", "password": PASSWORD}, REMOTE_ADDR="203.0.113.9"
        ).status_code
        == 429
    )
    # the same person from their office, and a colleague from the attacker's address, still get in
    response = client.post("/login/", {"username": "erin", "password": PASSWORD}, REMOTE_ADDR="198.51.100.7")
    assert response.status_code == 302
    client.logout()
    response = client.post("/login/", {"username": "fred", "password": PASSWORD}, REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 302


@pytest.mark.django_db
def test_a_right_password_resets_the_failure_count(client):
    make_user(username="gina")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        client.post("/login/", {"username": "gina", "password": "wrong"})
    assert logs_in(client, "gina", PASSWORD)
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        client.post("/login/", {"username": "gina", "password": "wrong"})
    assert logs_in(client, "gina", PASSWORD)


@pytest.mark.django_db
def test_a_forged_forwarded_for_header_does_not_dodge_the_lockout(client, settings):
    settings.BEHIND_PROXY = True
    make_user(username="hank")
    for n in range(settings.AXES_FAILURE_LIMIT):
        # the client makes up a new left-most address each time; our proxy appends the real one
        client.post(
            "/login/",
            {"username": "hank", "password": "wrong"},
            HTTP_X_FORWARDED_FOR=f"10.0.0.{n}, 203.0.113.50",
        )
    response = client.post(
        "/login/", {"username": "hank", "password": PASSWORD}, HTTP_X_FORWARDED_FOR="10.9.9.9, 203.0.113.50"
    )
    assert response.status_code == 429


@pytest.mark.django_db
def test_logging_in_rotates_the_session_key(client):
    make_user(username="ivy")
    client.get("/login/")
    client.session.save()
    before = client.session.session_key
    assert logs_in(client, "ivy", PASSWORD)
    assert client.session.session_key != before


@pytest.mark.django_db
def test_app_pages_carry_a_policy_that_allows_only_our_own_scripts(admin_client):
    response = admin_client.get("/")
    policy = response.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";") if d.strip())
    assert directives["script-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-eval" not in policy and "unsafe-inline" not in directives["script-src"]


def test_no_template_holds_inline_script():
    """The policy forbids inline script, so a template that has some is broken in the browser."""
    offenders = []
    for path in TEMPLATES.rglob("*.html"):
        text = path.read_text()
        for match in re.finditer(r"<script\b[^>]*>", text):
            if "src=" not in match.group(0):
                offenders.append(f"{path.name}: {match.group(0)}")
        for match in re.finditer(r"\s(on[a-z]+)=[\"']", text):
            offenders.append(f"{path.name}: {match.group(1)} handler")
        if "javascript:" in text:
            offenders.append(f"{path.name}: javascript: URL")
    assert offenders == []


@pytest.mark.django_db
def test_a_write_key_opens_nothing_outside_the_tracking_api(client):
    """Write keys ship in every tracked page: anyone has them. They must only write events."""
    import base64

    from events.models import Source

    key = Source.objects.create(name="Website").write_key
    basic = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    for path in ("/api/v1/contacts/", "/api/v1/sources/", "/api/v1/me/", "/api/v1/segments/"):
        for header in (basic, f"Token {key}", f"Bearer {key}"):
            response = client.get(path, HTTP_AUTHORIZATION=header)
            assert response.status_code == 401, (path, header, response.status_code)
            assert "results" not in response.json()
        response = client.get(path, HTTP_X_WRITE_KEY=key)
        assert response.status_code == 401
    # and on the app's pages a write key is no login
    response = client.get("/contacts/", HTTP_AUTHORIZATION=basic)
    assert response.status_code == 302 and "/login/" in response["Location"]
