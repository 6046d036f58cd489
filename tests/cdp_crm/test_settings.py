import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _manage(*args, **env):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_check_deploy():
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_HTTPS="1",
        DJANGO_ALLOWED_HOSTS="crm.example.com",
        DJANGO_CSRF_TRUSTED_ORIGINS="https://crm.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_plain_http_production_settings_are_flagged():
    result = _manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
    )
    assert result.returncode != 0
    assert "SESSION_COOKIE_SECURE" in result.stderr + result.stdout


def test_missing_secret_key_fails_loudly_when_debug_is_off():
    result = _manage("check", DJANGO_DEBUG="0")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_only_postgres_is_accepted():
    result = _manage("check", DJANGO_DEBUG="1", DATABASE_URL="sqlite:///db.sqlite3")
    assert result.returncode != 0
    assert "DATABASE_URL must point at PostgreSQL" in result.stderr


def test_bad_boolean_names_the_variable():
    result = _manage("check", DJANGO_DEBUG="maybe")
    assert result.returncode != 0
    assert "DJANGO_DEBUG must be one of" in result.stderr


def test_production_static_build_succeeds(tmp_path):
    # the Docker image runs this; a vendored file pointing at a missing source map would break it
    result = _manage(
        "collectstatic",
        "--no-input",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="build-only-not-a-secret",
        DJANGO_STATIC_MANIFEST="1",
        DJANGO_STATIC_ROOT=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    manifest = (tmp_path / "staticfiles.json").read_text()
    assert "vendor/htmx.min.js" in manifest and "css/app.css" in manifest
    assert list(tmp_path.glob("vendor/bootstrap/bootstrap.min.*.css.gz"))
