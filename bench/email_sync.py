"""IMAP sync throughput and memory, against a real Dovecot on this machine.

    cdp_crm.dev exec --database cdp_crm_mail_bench --redis-db N -- .venv/bin/python bench/email_sync.py \
        [--messages 10000] [--profile]

Starts Dovecot (tests/mail/imap_server.py: Debian's dovecot-imapd), delivers `--messages`
generated messages (plain and multipart/alternative, a third with an attachment, a tenth from
known contacts) into a fresh account's INBOX, then prints:

- the floor: the same FETCHes with nothing stored (what any sync must read from the server);
- the sync (mail.services.sync.mailbox_sync, one run, batches of 200): messages/s and the ratio
  to the floor;
- peak memory of a sync process (a child process each, ru_maxrss) for a mailbox of N/5 and of N
  messages: flat means the sync holds a batch, not the mailbox.
The database is migrated if needed; the bench's mailbox rows are deleted at the end.
"""

import argparse
import os
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import setup_django  # noqa: E402


def message(n: int, *, run: str) -> bytes:
    sender = f"Contact {n % 50} <c{n % 50}@customer{n % 7}.test>" if n % 10 == 0 else f"News <n{n}@list.test>"
    head = (
        f"Message-ID: <{run}.{n}@bench.test>\r\nFrom: {sender}\r\nTo: rep@ourco.test\r\n"
        f"Subject: Quarterly update {n}\r\nDate: Mon, 02 Nov 2026 09:{n % 60:02d}:00 +0000\r\n"
        "MIME-Version: 1.0\r\n"
    )
    text = (
        f"Hello,\r\n\r\nThis is message {n}. "
        + "Lorem ipsum dolor sit amet. " * 40
        + "\r\n\r\n-- \r\nSig\r\n"
    )
    html = f"<html><body><p>This is <b>message {n}</b>.</p>" + "<p>Lorem ipsum dolor sit amet.</p>" * 40
    html += "<script>alert(1)</script></body></html>"
    body = (
        'Content-Type: multipart/mixed; boundary="m"\r\n\r\n--m\r\n'
        'Content-Type: multipart/alternative; boundary="a"\r\n\r\n'
        f"--a\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
        f"--a\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--a--\r\n"
    )
    if n % 3 == 0:
        payload = ("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=" * 60 + "\r\n") * 20  # ~42 kB
        body += (
            f"--m\r\nContent-Type: application/pdf; name=quote-{n}.pdf\r\n"
            f"Content-Disposition: attachment; filename=quote-{n}.pdf\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\n{payload}"
        )
    body += "--m--\r\n"
    return (head + body).encode()


def fetch_floor(port: int, user: str, password: str, *, batch: int = 200) -> float:
    from imapclient import IMAPClient

    started = time.perf_counter()
    client = IMAPClient("127.0.0.1", port=port, ssl=False)
    client.login(user, password)
    client.select_folder("INBOX", readonly=True)
    uids = sorted(client.search(["UID", "1:*"]))
    for i in range(0, len(uids), batch):
        client.fetch(uids[i : i + batch], ["RFC822.SIZE"])
        client.fetch(uids[i : i + batch], ["BODY.PEEK[]", "INTERNALDATE"])
    client.logout()
    return time.perf_counter() - started


def make_mailbox(*, user: str, port: int, password: str):
    from django.contrib.auth import get_user_model

    from mail import crypto
    from mail.models import Mailbox

    owner, _ = get_user_model().objects.get_or_create(username="bench-mail", defaults={"email": user})
    return Mailbox.objects.create(
        owner=owner, email_address=user, username=user, imap_host="127.0.0.1", imap_port=port,
        imap_security="none", secret_encrypted=crypto.secret_encrypt(password), folders=["INBOX"],
    )  # fmt: skip


def child_sync(mailbox_id: int) -> None:
    """--child: one sync in this process, then print its peak RSS in MB."""
    from mail.services.sync import mailbox_sync

    result = mailbox_sync(mailbox_id=mailbox_id, budget=10**9)
    assert not result.error, result.error
    print(f"{result.imported} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the sync")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    setup_django()
    if args.child:
        child_sync(args.child)
        return

    from django.core.management import call_command

    from contacts.models import Contact
    from mail.models import Mailbox
    from mail.services.sync import mailbox_sync
    from tests.mail.imap_server import Dovecot, dovecot_missing

    if why := dovecot_missing():
        sys.exit(f"not run: {why}")
    call_command("migrate", verbosity=0)
    for i in range(50):
        Contact.objects.get_or_create(email=f"c{i}@customer{i % 7}.test", defaults={"first_name": f"C{i}"})
    server = Dovecot().start()
    run = uuid.uuid4().hex[:8]
    created: list[int] = []
    try:
        n = args.messages
        user = f"bench-{run}@ourco.test"
        t0 = time.perf_counter()
        server.deliver(user, (message(i, run=run) for i in range(n)))
        size_mb = (
            sum(len(message(i, run=run)) for i in range(0, n, max(1, n // 100))) * max(1, n // 100) / 1e6
        )
        print(f"delivered {n:,} messages (~{size_mb:.0f} MB) in {time.perf_counter() - t0:.1f} s")

        floor = fetch_floor(server.port, user, server.password)
        print(f"floor: FETCH of every message, nothing stored: {floor:.1f} s = {n / floor:,.0f} msg/s")

        mailbox = make_mailbox(user=user, port=server.port, password=server.password)
        created.append(mailbox.pk)
        t0 = time.perf_counter()
        if args.profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.enable()
        result = mailbox_sync(mailbox_id=mailbox.pk, budget=10**9)
        took = time.perf_counter() - t0
        if args.profile:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(35)
        assert not result.error and result.imported == n, (result.error, result.imported)
        print(
            f"sync: {n:,} messages in {took:.1f} s = {n / took:,.0f} msg/s "
            f"({took / floor:.1f}x the fetch floor; goal >= 200 msg/s)"
        )

        # Peak memory of a fresh process syncing N/5, then N messages (new accounts, same mail).
        peaks = []
        for count in (n // 5, n):
            other = f"bench-{run}-{count}@ourco.test"
            server.deliver(other, (message(i, run=f"{run}m{count}") for i in range(count)))
            box = make_mailbox(user=other, port=server.port, password=server.password)
            created.append(box.pk)
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(box.pk)],
                capture_output=True, text=True, check=True, env=os.environ,
            )  # fmt: skip
            imported, peak = out.stdout.split()
            peaks.append((count, int(imported), int(peak)))
        for count, imported, peak in peaks:
            print(f"peak RSS of a sync process, {count:,}-message mailbox: {peak} MB ({imported:,} imported)")
        print(f"memory ratio N/(N/5): {peaks[1][2] / peaks[0][2]:.2f} (1.0 = flat)")
    finally:
        Mailbox.objects.filter(pk__in=created).delete()
        server.stop()


if __name__ == "__main__":
    main()
