import json
import time
import uuid

import pytest
import redis
from django.conf import settings

from cdp_crm import health, tasks


@pytest.mark.django_db(transaction=True)
def test_a_task_runs_on_a_real_worker(celery_worker):
    # given a unique value, so only this round trip can produce it
    value = uuid.uuid4().hex
    # when it is sent through the Redis broker to the worker process
    result = tasks.echo.delay(value).get(timeout=30)
    # then the worker (another process) ran it
    assert result["value"] == value
    assert result["worker_pid"] != __import__("os").getpid()


@pytest.mark.django_db(transaction=True)
def test_heartbeat_task_stamps_redis_for_healthz(celery_worker, client):
    store = redis.Redis.from_url(settings.REDIS_URL)
    store.delete(health.HEARTBEAT_KEY)
    tasks.heartbeat.delay()
    deadline = time.monotonic() + 30
    while not store.get(health.HEARTBEAT_KEY):
        assert time.monotonic() < deadline, celery_worker.output()[-2000:]
        time.sleep(0.1)
    beat = json.loads(store.get(health.HEARTBEAT_KEY))
    assert str(celery_worker.proc.pid) != beat["worker"].split(":")[1]  # a pool child ran it
    heartbeat = client.get("/healthz").json()["checks"]["celery"]["heartbeat"]
    assert heartbeat["worker"] == beat["worker"]
    assert heartbeat["stale"] is False and heartbeat["age_seconds"] < 30


def test_celery_is_configured_for_reliability():
    from cdp_crm.celery import app

    conf = app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.accept_content == ["json"] and conf.task_serializer == "json"
    # a running task must never be redelivered to a second worker while it is still inside its limit
    assert (
        conf.broker_transport_options["visibility_timeout"] > conf.task_time_limit > conf.task_soft_time_limit
    )
    assert {q.name for q in conf.task_queues} == {"default", "ingest", "identity", "segments"}
    # identity has no tasks of its own: stitching is the ingest drain, routed to its queue
    assert app.amqp.router.route({}, "events.tasks.ingest_drain")["queue"].name == "identity"
    assert app.amqp.router.route({}, "segments.tasks.refresh")["queue"].name == "segments"
    assert app.amqp.router.route({}, "events.tasks.sweep")["queue"].name == "ingest"
    assert "heartbeat" in conf.beat_schedule
