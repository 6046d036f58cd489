import os
import socket

from celery import shared_task
from django.utils import timezone

from cdp_crm import health


@shared_task(ignore_result=True)
def heartbeat() -> None:
    """Beat sends this every 30 s; the worker that runs it stamps Redis, and /healthz reads it."""
    health.heartbeat_record(worker=f"{socket.gethostname()}:{os.getpid()}", at=timezone.now())


@shared_task(ignore_result=False)
def echo(value: str) -> dict:
    """Round trip through the broker: used by operators (`celery call`) and tests to prove a worker runs."""
    return {"value": value, "worker_pid": os.getpid()}
