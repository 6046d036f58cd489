from django.apps import AppConfig


class CdpCrmConfig(AppConfig):
    name = "cdp_crm"
    verbose_name = "cdp-crm project"
