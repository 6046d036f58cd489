"""Liveness of the parts the app depends on: the database, Redis and the Celery workers."""

import json
import time
from datetime import datetime

import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone

HEARTBEAT_KEY = "cdp:health:heartbeat"
# Beat sends the heartbeat every 30 s; three missed beats mean the beat -> worker path is broken.
HEARTBEAT_STALE_AFTER = 90
# A busy worker answers control pings between tasks; 2 s still keeps the probe well inside a load
# balancer's usual 5-10 s health-check timeout.
PING_TIMEOUT = 2.0


def _redis_client() -> redis.Redis:
    # Short timeouts: a health probe must answer quickly even when Redis hangs.
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


def heartbeat_record(*, worker: str, at: datetime) -> None:
    _redis_client().set(HEARTBEAT_KEY, json.dumps({"worker": worker, "at": at.isoformat()}), ex=86400)


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        result = {"ok": True, **(check() or {})}
    except Exception as exc:  # a health probe reports every failure instead of raising it
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}".strip()[:300]}
    result["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _redis() -> None:
    _redis_client().ping()


def _celery() -> dict:
    from cdp_crm.celery import app

    with app.connection_for_write(settings.REDIS_URL) as conn:
        replies = app.control.ping(timeout=PING_TIMEOUT, limit=1, connection=conn)
    if not replies:
        raise RuntimeError(f"no Celery worker answered a ping within {PING_TIMEOUT:g} s")
    info: dict = {"workers_answering": [next(iter(reply)) for reply in replies]}
    raw = _redis_client().get(HEARTBEAT_KEY)
    if raw:
        beat = json.loads(raw)
        age = (timezone.now() - datetime.fromisoformat(beat["at"])).total_seconds()
        info["heartbeat"] = {"worker": beat["worker"], "age_seconds": round(age, 1)}
        info["heartbeat"]["stale"] = age > HEARTBEAT_STALE_AFTER
    else:
        info["heartbeat"] = None
    return info


def health_report() -> tuple[bool, dict]:
    """Return (all_ok, report). Celery is only probed through a broker that answers."""
    checks = {"database": _timed(_database), "redis": _timed(_redis)}
    if checks["redis"]["ok"]:
        checks["celery"] = _timed(_celery)
    else:
        checks["celery"] = {"ok": False, "error": "not checked: the broker (Redis) is unreachable"}
    failing = [name for name, check in checks.items() if not check["ok"]]
    return not failing, {"status": "ok" if not failing else "fail", "failing": failing, "checks": checks}
