import os
from pathlib import Path

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cdp_crm.settings")

app = Celery("cdp_crm")
# Every CELERY_* setting in cdp_crm/settings.py configures this app (with its reason beside it).
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect
def _tell_the_launcher(**kwargs) -> None:
    # `make run` prints its login banner once the worker is up, so the worker's start-up output
    # comes before the banner (cdp_crm.dev; asking /healthz until it stops answering 503 logs an
    # error per try).
    if path := os.environ.get("CDP_WORKER_READY_FILE"):
        Path(path).touch()
