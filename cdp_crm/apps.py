from django.apps import AppConfig


class CdpCrmConfig(AppConfig):
    name = "cdp_crm"
    verbose_name = "cdp-crm project"

    def ready(self) -> None:
        from core.replica import write_tracking_install

        # The read replica's rule "a unit of work that wrote reads the primary" needs every
        # primary connection's statements seen (core/replica.py).
        write_tracking_install()
