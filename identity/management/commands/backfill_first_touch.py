from django.core.management.base import BaseCommand, CommandError

from identity.services import rebuild


class Command(BaseCommand):
    help = (
        "Re-derive first-touch attribution (the earliest tracked touch, dated) for contacts whose "
        "attribution was recorded before touches carried their time. Safe beside the workers and "
        "to run again; a full rebuild_identity does the same and more."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=rebuild.FIRST_TOUCH_BATCH)

    def handle(self, *args, batch_size: int, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        changed = rebuild.first_touch_backfill(batch_size=batch_size)
        self.stdout.write(f"first touch re-derived for {changed} contacts")
