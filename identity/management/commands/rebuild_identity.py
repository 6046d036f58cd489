import time

from django.core.management.base import BaseCommand, CommandError

from core.errors import DomainError
from identity.services import rebuild


class Command(BaseCommand):
    help = (
        "Rebuild the identity graph from the event log: reset what the stitching worker derived "
        "(CRM data stays), then replay every event in batches. Resumes an interrupted replay. "
        "Stop the identity workers first."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=rebuild.BATCH_SIZE)
        parser.add_argument(
            "--restart", action="store_true", help="Reset again even if an interrupted replay could resume."
        )

    def handle(self, *args, batch_size: int, restart: bool, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        started = time.monotonic()
        if restart or not rebuild.rebuild_pending():
            try:
                result = rebuild.identity_reset()
            except DomainError as exc:
                raise CommandError(f"reset failed, nothing changed: {exc.message}") from None
            self.stdout.write(
                f"reset: {result.merges_split} automatic merges undone, {result.contacts_deleted} "
                f"tracked contacts deleted, {result.contacts_kept} kept for their CRM data"
            )
        else:
            self.stdout.write("resuming the interrupted replay")

        def progress(done: int, last_event_id: int) -> None:
            if done % (batch_size * 20) < batch_size:
                self.stdout.write(f"  {done} events replayed (up to event {last_event_id})")

        done = rebuild.identity_replay(batch_size=batch_size, progress=progress)
        elapsed = time.monotonic() - started
        rate = done / elapsed if elapsed else 0
        self.stdout.write(f"replayed {done} events in {elapsed:.1f} s ({rate:.0f} events/s)")
