import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cdp_crm.settings")

app = Celery("cdp_crm")
# Every CELERY_* setting in cdp_crm/settings.py configures this app (with its reason beside it).
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
