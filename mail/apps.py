from django.apps import AppConfig


class MailConfig(AppConfig):
    name = "mail"

    def ready(self) -> None:
        # Celery's autodiscovery imports only `<app>.tasks`; the sending tasks live apart from the
        # mailbox sync's (mail/send_tasks.py), so register them when the app loads.
        from mail import send_tasks  # noqa: F401
