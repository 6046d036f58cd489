import time

from django.core.management.base import BaseCommand, CommandError

from events.services import partition_migration as migration
from events.services import partitions


class Command(BaseCommand):
    help = (
        "Move an unpartitioned events_event into the partitioned layout online: prepare, copy in "
        "id-ordered batches (resumable: run it again after a stop), verify, swap. Ingestion, "
        "retention and erasure keep running meanwhile. --drop-old drops the table a swap left."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch", type=int, default=migration.COPY_BATCH, help="rows per transaction")
        parser.add_argument(
            "--max-batches", type=int, default=None, help="stop after this many (resume later)"
        )
        parser.add_argument("--pause", type=float, default=0.0, help="seconds between batches (throttle)")
        parser.add_argument("--no-swap", action="store_true", help="copy, but leave the swap for a later run")
        parser.add_argument("--drop-old", action="store_true", help="drop events_event_unpartitioned")

    def handle(self, *args, batch, max_batches, pause, no_swap, drop_old, **options):
        if partitions.event_log_is_partitioned() and migration.event_log_copy_state() is None:
            if drop_old:
                dropped = migration.event_log_retired_drop()
                self.stdout.write(f"dropped {migration.RETIRED}" if dropped else "nothing to drop")
            else:
                self.stdout.write("events_event is already partitioned")
            return
        state = migration.event_log_copy_prepare()
        self.stdout.write(f"copying ids {state.copied_through}..{state.high} ({state.copied} copied so far)")
        started, batches = time.monotonic(), 0
        while not state.done:
            if max_batches is not None and batches >= max_batches:
                self.stdout.write(
                    f"stopped after {batches} batches at id {state.copied_through}; run again to resume"
                )
                return
            state = migration.event_log_copy_batch(limit=batch)
            batches += 1
            if batches % 50 == 0:
                self.stdout.write(f"  id {state.copied_through} of {state.high}, {state.copied} rows copied")
            if pause:
                time.sleep(pause)
        elapsed = time.monotonic() - started
        self.stdout.write(f"copy complete: {state.copied} rows copied by batches in {elapsed:.1f} s")
        old, new = migration.event_log_copy_verify()
        if old != new:
            raise CommandError(f"the tables differ (rows, id sum): old {old}, new {new}; not swapping")
        self.stdout.write(f"verified: {old[0]} rows in both tables")
        if no_swap:
            self.stdout.write("not swapped (--no-swap): run again to swap")
            return
        started = time.monotonic()
        migration.event_log_copy_swap()
        self.stdout.write(
            f"swapped in {(time.monotonic() - started) * 1000:.0f} ms: events_event is partitioned; "
            f"the old table is {migration.RETIRED} (drop it with --drop-old)"
        )
