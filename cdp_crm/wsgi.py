import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cdp_crm.settings")
django_application = get_wsgi_application()

# The tracking API (/v1/*) is answered before Django's middleware and URL resolver, by the same
# code as its Django view (events/ingest/gateway.py); every other request goes to Django.
from events.ingest.gateway import IngestGateway  # noqa: E402 - needs the settings configured above

application = IngestGateway(django_application)
