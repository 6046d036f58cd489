"""A real IMAP server for the mail sync tests: Dovecot (Debian's dovecot-imapd) with its config,
passwd-file and Maildirs in a temporary directory, listening on a free port of 127.0.0.1.

Messages are delivered in bulk by writing Maildir files (10,000 in well under a second; Dovecot
gives them UIDs when a client first opens the folder), or one at a time by IMAP APPEND. Dovecot
refuses mail access as root, so as root the mail files belong to the unprivileged `dovenull`
user the package creates; as any other user, everything runs as that user.

`CuttingProxy` sits between the sync and Dovecot and drops the connection after a number of
bytes from the server: the "connection dropped mid-sync" case, on a real socket.
"""

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

DOVECOT = os.environ.get("CDP_DOVECOT", "/usr/sbin/dovecot")
NOT_RUN = "IMAP TEST NOT RUN"
SMTP_PASSWORD = (
    "smtp-app-password"  # tests/mail/smtp_server.py's  # tests/conftest.py counts these in its closing banner
)


def dovecot_missing() -> str | None:
    """Why the IMAP tests cannot run here, or None."""
    if not os.access(DOVECOT, os.X_OK):
        return f"no Dovecot at {DOVECOT} (apt-get install dovecot-imapd, or set CDP_DOVECOT)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, *, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(64).startswith(b"* OK"):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"Dovecot did not answer on port {port}")
        time.sleep(0.05)


_CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%u
first_valid_uid = 1
default_internal_user = {internal}
default_login_user = {login}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \\Sent
    auto = create
  }}
}}
# Every user has the server's one password (a passwd-file edited twice in a second with the same
# size is not re-read); a failed login is answered at once.
passdb {{
  driver = static
  args = password={password}
}}
# The test SMTP server's password too (tests/mail/smtp_server.py): one mailbox, both servers.
passdb {{
  driver = static
  args = password={smtp_password}
}}
auth_failure_delay = 0
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  chroot =
}}
# No auth penalty (Dovecot's documented switch): a wrong-password test must not slow the next.
service anvil {{
  chroot =
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


class Dovecot:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="cdp-dovecot-"))
        self.port = free_port()
        if os.geteuid() == 0:
            mail_user = pwd.getpwnam("dovenull")
            internal, login = "dovecot", "dovenull"
        else:
            mail_user = pwd.getpwuid(os.geteuid())
            internal = login = mail_user.pw_name
        self.uid, self.gid = mail_user.pw_uid, mail_user.pw_gid
        self.password = "app-password"
        self._seq = 0
        for sub in ("run", "state", "mail", "home"):
            (self.root / sub).mkdir()
        # The run directory must be reachable by the login processes; the root stays private.
        os.chmod(self.root, 0o755)
        for sub in ("mail", "home"):
            os.chown(self.root / sub, self.uid, self.gid)
        (self.root / "dovecot.conf").write_text(
            _CONFIG.format(
                root=self.root,
                port=self.port,
                password=self.password,
                smtp_password=SMTP_PASSWORD,
                uid=self.uid,
                gid=self.gid,
                internal=internal,
                login=login,
            )
        )

    # --- lifecycle

    def start(self) -> "Dovecot":
        # The daemon keeps the streams it inherits: never pipes (run() would wait for their end).
        with open(self.root / "start.log", "wb") as out:
            started = subprocess.run(
                [DOVECOT, "-c", str(self.root / "dovecot.conf")],
                stdout=out,
                stderr=out,
                stdin=subprocess.DEVNULL,
            )
        if started.returncode != 0:
            raise RuntimeError(f"Dovecot did not start: {(self.root / 'start.log').read_text()}")
        try:
            _wait_for_port(self.port)
        except RuntimeError:
            raise RuntimeError(f"Dovecot did not start; its log:\n{self.log()}") from None
        return self

    def stop(self) -> None:
        subprocess.run(
            [DOVECOT, "-c", str(self.root / "dovecot.conf"), "stop"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        master = self.root / "run" / "master.pid"
        deadline = time.monotonic() + 10
        while master.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text()[-4000:] if path.exists() else ""

    # --- mail (any user name logs in with `password`; its Maildir appears on first delivery)

    def _maildir(self, user: str, folder: str) -> Path:
        base = self.root / "mail" / user
        path = base if folder == "INBOX" else base / f".{folder.replace('/', '.')}"
        for sub in ("cur", "new", "tmp"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        for p in (base, path, path / "cur", path / "new", path / "tmp"):
            os.chown(p, self.uid, self.gid)
        return path

    def deliver(
        self, user: str, messages: Iterable[bytes], *, folder: str = "INBOX", received: datetime | None = None
    ) -> int:
        """Write messages straight into the folder's Maildir (new/, unseen). Dovecot numbers them
        in file-name order when a client next opens the folder, and takes a file's mtime as its
        arrival time (INTERNALDATE; `received`, else now). Returns how many were written."""
        path = self._maildir(user, folder)
        count = 0
        stamp = int(time.time())
        for raw in messages:
            self._seq += 1
            name = f"{stamp}.M{self._seq:08d}P{os.getpid()}.cdp-test"
            tmp = path / "tmp" / name
            tmp.write_bytes(raw)
            os.chown(tmp, self.uid, self.gid)
            if received is not None:
                os.utime(tmp, (received.timestamp(), received.timestamp()))
            tmp.rename(path / "new" / name)
            count += 1
        return count

    def reset_uidvalidity(self, user: str, folder: str = "INBOX") -> None:
        """Make the server renumber the folder (a new UIDVALIDITY), as after a server migration:
        replace Dovecot's UID list with an empty one under the next UIDVALIDITY and drop its
        indexes; the messages stay and get new UIDs from 1."""
        path = self._maildir(user, folder)
        uidlist = path / "dovecot-uidlist"
        header = uidlist.read_text().split("\n", 1)[0].split()
        old = int(next(f[1:] for f in header if f.startswith("V")))
        for f in path.glob("dovecot*"):
            f.unlink()
        uidlist.write_text(f"3 V{old + 1} N1\n")
        os.chown(uidlist, self.uid, self.gid)

    def expunge_all(self, user: str, folder: str = "INBOX") -> None:
        path = self._maildir(user, folder)
        for sub in ("cur", "new"):
            for f in (path / sub).iterdir():
                f.unlink()


class CuttingProxy:
    """A TCP proxy to `port` that closes the client's connection once the server has sent
    `cut_after` bytes through it (None: never). Counts the connections it accepted."""

    def __init__(self, port: int, *, cut_after: int | None) -> None:
        self.target = port
        self.cut_after = cut_after
        self.connections = 0
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self.port = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            server = socket.create_connection(("127.0.0.1", self.target))
            budget = [self.cut_after]
            threading.Thread(target=self._pipe, args=(client, server, None), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, budget), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket, budget: list | None) -> None:
        try:
            while data := src.recv(65536):
                if budget is not None and budget[0] is not None:
                    if len(data) >= budget[0]:
                        dst.sendall(data[: budget[0]])
                        break
                    budget[0] -= len(data)
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self._closed = True
        self._listener.close()
