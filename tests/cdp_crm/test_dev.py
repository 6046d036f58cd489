"""The launcher's embedded path: what `make run`/`make test` do on a laptop with no servers."""

import psutil
import psycopg
import redis

from cdp_crm import dev


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
