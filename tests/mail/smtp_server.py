"""A real SMTP server for the sending tests: aiosmtpd on a free port of 127.0.0.1, in a thread.

It asks for AUTH (LOGIN or PLAIN, accepted for one username/password: plain text is allowed on
loopback only), keeps what it received (envelope sender, recipients, the raw bytes) for the
tests to read, and can be told to answer the next messages with an error (a 451 "try later",
a 550 "no such user") to exercise the sender's retries and failures.
"""

import threading
import warnings
from dataclasses import dataclass

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.mail.imap_server import free_port

USERNAME = "rep@ourco.test"
PASSWORD = "smtp-app-password"


@dataclass(frozen=True, slots=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes


class _Handler:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.replies: list[str] = []  # answers to the next DATA commands, in order

    async def handle_DATA(self, server, session, envelope) -> str:
        with self.lock:
            if self.replies:
                return self.replies.pop(0)
            self.received.append(
                Received(
                    mail_from=envelope.mail_from,
                    rcpt_tos=list(envelope.rcpt_tos),
                    raw=bytes(envelope.original_content or envelope.content),
                )
            )
        return "250 2.0.0 OK queued"


def _authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
    # Any user name with the one password (as the test Dovecot): a mailbox logs in to both.
    ok = (
        isinstance(auth_data, LoginPassword)
        and bool(auth_data.login)
        and auth_data.password.decode() == PASSWORD
    )
    return AuthResult(success=ok, handled=False)


class _Controller(Controller):
    def factory(self):
        # Plain AUTH without TLS is what we want on loopback; aiosmtpd warns on every connection.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return super().factory()


class SmtpServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.handler = _Handler()
        self.username, self.password = USERNAME, PASSWORD
        self._controller = _Controller(
            self.handler,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=_authenticator,
            auth_required=True,
            auth_require_tls=False,  # loopback only
        )

    def start(self) -> "SmtpServer":
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def reset(self) -> None:
        with self.handler.lock:
            self.handler.received.clear()
            self.handler.replies.clear()

    def reject_next(self, *replies: str) -> None:
        """Answer the next messages' DATA with these replies ("451 4.3.0 Try later")."""
        with self.handler.lock:
            self.handler.replies.extend(replies)

    @property
    def received(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.received)
