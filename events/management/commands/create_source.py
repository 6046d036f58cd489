from django.core.management.base import BaseCommand, CommandError

from core.errors import DomainError
from events import services
from events.models import SourceKind


class Command(BaseCommand):
    help = "Create an event source and print only its write key (for scripts: KEY=$(... create_source))."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--kind", choices=SourceKind.values, default=SourceKind.WEB)

    def handle(self, *args, name: str, kind: str, **options):
        try:
            source = services.source_create(actor=None, name=name, kind=kind)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(source.write_key)
