"""The launcher's embedded path: what `make run`/`make test` do on a laptop with no servers."""

import contextlib
import http.cookiejar
import io
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import psutil
import psycopg
import pytest
import redis
from django.conf import settings
from django.core.management import call_command

from cdp_crm import dev
from tests.conftest import ROOT, _test_database_url
from tests.factories import make_admin


def _processes_under(path: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if path in cmdline:
            found.append(proc)
    return found


def test_embedded_postgres_and_valkey_start_answer_and_stop(tmp_path, monkeypatch):
    # given no DATABASE_URL/REDIS_URL and the default-port servers ignored, as on a bare laptop
    monkeypatch.setattr(dev, "DEVDATA", tmp_path / "devdata")
    monkeypatch.setattr(dev, "FORCE_EMBEDDED", True)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    services = dev.Services(database="launcher_check", redis_db=3)
    try:
        # when the launcher starts its services
        env = services.start()
        # then both answer at the URLs it hands to the app, with the app's database created
        assert services.started == ["postgres", "valkey"]
        with psycopg.connect(dev._libpq_url(env["DATABASE_URL"], "launcher_check")) as conn:
            assert conn.execute("select current_database()").fetchone() == ("launcher_check",)
        assert redis.Redis.from_url(env["REDIS_URL"]).ping()
        assert env["REDIS_URL"].endswith("/3")
    finally:
        services.stop()
    # and after stopping, no server process of theirs is left behind
    assert _processes_under(str(tmp_path)) == []


@pytest.mark.django_db(transaction=True)
def test_make_run_ends_with_a_login_banner_whose_password_works(tmp_path, client):
    # given a database that already holds the demo, with an admin whose password is another one
    # and who is locked out by tries with it, and a fresh .devdata (a new clone, `make clean`)
    call_command("seed_demo", "--contacts", "20", stdout=io.StringIO())
    make_admin(username="admin", password="chosen-on-another-machine")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/login/", {"username": "admin", "password": "a guess"})
    env = {
        **os.environ,
        "DATABASE_URL": _test_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "PORT": str(dev._free_port()),
        "CDP_DEVDATA": str(tmp_path),
    }
    env.pop("LOG_LEVEL", None)
    # when `make run` starts
    proc = subprocess.Popen(
        [sys.executable, "-m", "cdp_crm.dev", "run"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(
        target=lambda: [lines.put(line.rstrip("\n")) for line in proc.stdout], daemon=True
    )
    reader.start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while sum(line.startswith("+---") for line in seen) < 2:
            assert proc.poll() is None and time.monotonic() < deadline, "\n".join(seen)
            with contextlib.suppress(queue.Empty):
                seen.append(lines.get(timeout=1))
        box = seen[next(i for i, line in enumerate(seen) if line.startswith("+---")) :]
        fields = dict(line.strip("| ").split(": ", 1) for line in box if ": " in line)
        # then the banner shows the URL and the login, and the printed password logs in (through the
        # running server: the lockout is lifted too)
        assert fields["username"] == "admin"
        assert f"http://127.0.0.1:{env['PORT']}/" in box[1]
        assert fields["password"] == (tmp_path / "demo-password").read_text().strip()
        assert _logs_in_over_http(f"http://127.0.0.1:{env['PORT']}/login/", "admin", fields["password"])
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
    # and the banner was the last thing printed before Ctrl-C: the next line is the launcher's own
    reader.join(timeout=30)  # the output ends when the launcher and its children have exited
    rest = []
    while not lines.empty():
        rest.append(lines.get())
    assert rest and rest[0] == "[cdp-crm] stopping…", rest[:5]
    # (startup is quiet: migrations and worker banners are not among the lines either)
    assert not any("Applying " in line or "celery@" in line for line in seen), seen


def _logs_in_over_http(url: str, username: str, password: str) -> bool:
    """The login form, as a browser fills it in (CSRF cookie and token); True when it let us in."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(url, timeout=10) as response:
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.read().decode())[1]
    form = urllib.parse.urlencode({"username": username, "password": password, "csrfmiddlewaretoken": token})
    try:
        with opener.open(url, data=form.encode(), timeout=10) as response:
            landed = response.url
    except urllib.error.HTTPError:  # 429: locked out
        return False
    return "/login/" not in landed and any(cookie.name == "sessionid" for cookie in jar)
