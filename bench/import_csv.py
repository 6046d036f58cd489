"""CSV import benchmark: a generated N-row file imported by a real Celery worker.

    DJANGO_DEBUG=1 .venv/bin/python -m cdp_crm.dev exec --database cdp_crm_wtd --redis-db 13 -- \
        .venv/bin/python bench/import_csv.py [--rows 50000] [--keep]

Prints the upload check time, then for a first run (all new contacts) and a second run of the
same file ("update existing") the rows/s the worker achieved and the worker's peak RSS, sampled
every 50 ms with psutil, next to its idle RSS. The worker runs with DEBUG off (as in production:
DEBUG keeps a log of queries) and `--pool=solo`, so the process measured is the one that runs
the task. Everything the benchmark creates is deleted afterwards unless --keep is given.
"""

import argparse
import csv
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cdp_crm.settings")

import django  # noqa: E402

django.setup()

import psutil  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.files import File  # noqa: E402
from django.core.management import call_command  # noqa: E402

from cdp_crm.celery import app  # noqa: E402
from contacts.models import Company, Contact, CustomField, ImportJob  # noqa: E402
from contacts.services import importing  # noqa: E402
from tests.factories import make_admin, user_model  # noqa: E402

DOMAIN = "bench-import.example"
COMPANY_PREFIX = "BenchImport Co "


def write_csv(path: Path, rows: int, *, variant: int = 0) -> None:
    """The same people each time; a new `variant` changes their titles and scores."""
    rng = random.Random(42)
    first = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim"]
    last = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Perlman"]
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(
            ["E-mail", "First Name", "Last Name", "Phone", "Company", "Job Title", "Tags", "Score"]
        )
        for i in range(rows):
            # 1 row in 100 has a broken email, to exercise the rejected-rows path.
            email = f"person{i}@{DOMAIN}" if i % 100 else f"person{i}-at-{DOMAIN}"
            writer.writerow(
                [
                    email,
                    rng.choice(first),
                    rng.choice(last),
                    f"+1 555 {i:07d}",
                    f"{COMPANY_PREFIX}{i % 500}",
                    rng.choice(["CEO", "CTO", "Engineer", "Buyer", ""]) + (f" {variant}" if variant else ""),
                    rng.choice(["lead,webinar", "customer", "", "trial;vip"]),
                    str(rng.randint(0, 100) + variant),
                ]
            )


def start_worker() -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "bench-" + "x" * 50,
        "DJANGO_MEDIA_ROOT": str(settings.MEDIA_ROOT),
    }
    cmd = [sys.executable, "-m", "celery", "-A", "cdp_crm", "worker", "-Q", "default", "--pool=solo"]
    cmd += [
        "--loglevel=WARNING",
        "--without-gossip",
        "--without-mingle",
        "-n",
        f"bench-import-{os.getpid()}@%h",
    ]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, start_new_session=True)
    deadline = time.monotonic() + 60
    while not app.control.ping(
        destination=[f"bench-import-{os.getpid()}@{os.uname().nodename}"], timeout=0.5
    ):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("the worker did not start")
    return proc


def run_import(path: Path, *, user, worker: psutil.Process, dedupe: str) -> dict:
    t0 = time.perf_counter()
    with path.open("rb") as handle:
        job = importing.import_upload(actor=user, uploaded=File(handle, name=path.name))
    upload_s = time.perf_counter() - t0
    mapping = dict(job.mapping)
    mapping[str(job.headers.index("Score"))] = "custom:bench_score"
    idle_rss = worker.memory_info().rss
    peak_rss = idle_rss
    t1 = time.perf_counter()
    importing.import_start(job=job, actor=user, mapping=mapping, dedupe=dedupe, create_companies=True)
    while not job.is_finished:
        time.sleep(0.05)
        peak_rss = max(peak_rss, worker.memory_info().rss)
        job.refresh_from_db()
    wall_s = time.perf_counter() - t1
    busy_s = (job.finished_at - job.started_at).total_seconds()
    return {
        "job": job,
        "upload_s": upload_s,
        "wall_s": wall_s,
        "busy_s": busy_s,
        "rows_per_s": job.processed_rows / busy_s,
        "idle_rss_mb": idle_rss / 2**20,
        "peak_rss_mb": peak_rss / 2**20,
    }


def cleanup() -> None:
    Contact.objects.filter(email__endswith=f"@{DOMAIN}").delete()
    Contact.objects.filter(email__endswith=f"-at-{DOMAIN}").delete()
    Company.objects.filter(name__startswith=COMPANY_PREFIX).delete()
    for job in ImportJob.objects.filter(created_by__username="bench-import"):
        job.file.delete(save=False)
        job.delete()
    CustomField.objects.filter(entity="contact", key="bench_score").delete()
    user_model().objects.filter(username="bench-import").delete()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--keep", action="store_true", help="keep the imported rows")
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    cleanup()
    user = make_admin(username="bench-import")
    CustomField.objects.create(entity="contact", key="bench_score", label="Bench score", field_type="number")
    cpu = os.cpu_count()
    print(f"CSV import benchmark: {args.rows} rows, {cpu} CPUs, load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        path, changed = Path(tmp) / "bench.csv", Path(tmp) / "bench-changed.csv"
        write_csv(path, args.rows)
        write_csv(changed, args.rows, variant=1)
        print(f"file: {path.stat().st_size / 2**20:.1f} MiB")
        proc = start_worker()
        try:
            worker = psutil.Process(proc.pid)
            runs = [
                ("new contacts", path, "update"),
                ("changed titles and scores, update existing", changed, "update"),
                ("same file, skip existing", changed, "skip"),
            ]
            for label, file, dedupe in runs:
                r = run_import(file, user=user, worker=worker, dedupe=dedupe)
                job = r["job"]
                print(
                    f"{label}: {job.processed_rows} rows ({job.created_count} created, {job.updated_count} "
                    f"updated, {job.skipped_count} skipped, {job.error_count} rejected) "
                    f"in {r['busy_s']:.1f} s worker time "
                    f"= {r['rows_per_s']:.0f} rows/s; {r['wall_s']:.1f} s from start to done; "
                    f"upload check {r['upload_s']:.2f} s; worker RSS idle {r['idle_rss_mb']:.0f} MiB, "
                    f"peak {r['peak_rss_mb']:.0f} MiB"
                )
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    if not args.keep:
        cleanup()


if __name__ == "__main__":
    main()
