"""Logging in to a mailbox's servers: the one place that turns a Mailbox into an IMAP or SMTP
session, so sync, sending and "Test connection" fail with the same plain words.

The login step is chosen by `Mailbox.auth_method`. Only passwords (app passwords) exist today;
OAuth for Gmail / Microsoft 365 plugs in here as another method whose secret is a refresh token:
it exchanges the token for an access token and logs in with XOAUTH2 (`IMAPClient.oauth2_login`,
`smtplib.SMTP.auth("XOAUTH2", ...)`), and nothing above this module changes.
"""

import contextlib
import smtplib
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from mail.crypto import SecretUnreadable, secret_decrypt
from mail.models import AuthMethod, Mailbox, Security

TIMEOUT_SECONDS = 30


class MailServerError(Exception):
    """A mailbox's server could not be used; `str()` says which server and what failed, in words a
    rep can act on (never the password)."""

    def __init__(self, message: str, *, auth: bool = False) -> None:
        super().__init__(message)
        self.auth = auth  # the server refused the credentials (retrying will not help)


def _secret(mailbox: Mailbox) -> str:
    if not mailbox.secret_encrypted:
        raise MailServerError("No password is stored for this mailbox: enter it again.", auth=True)
    try:
        return secret_decrypt(mailbox.secret_encrypted)
    except SecretUnreadable:
        raise MailServerError(
            "The stored password cannot be decrypted (the encryption key changed): enter it again.",
            auth=True,
        ) from None


def _context() -> ssl.SSLContext:
    return ssl.create_default_context()


def describe_network_error(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"the server's certificate is not trusted ({exc.verify_message})"
    if isinstance(exc, ssl.SSLError):
        return f"the TLS handshake failed ({exc.reason or exc}); check the security setting and port"
    if isinstance(exc, socket.gaierror):
        return "the host name does not resolve"
    if isinstance(exc, ConnectionRefusedError):
        return "the connection was refused; check the host and port"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "the server did not answer in time"
    if isinstance(exc, ConnectionError | EOFError):
        return "the server closed the connection"
    return str(exc) or exc.__class__.__name__


@contextmanager
def imap_session(mailbox: Mailbox, *, timeout: float = TIMEOUT_SECONDS) -> Iterator[IMAPClient]:
    """A logged-in IMAP session on the mailbox's server, logged out on exit. Raises MailServerError
    for what a rep can fix (host, port, TLS, password) and lets a mid-session IMAP error through
    to the caller, which knows what it was doing."""
    where = f"IMAP {mailbox.imap_host}:{mailbox.imap_port}"
    password = _secret(mailbox)
    try:
        client = IMAPClient(
            mailbox.imap_host,
            port=mailbox.imap_port,
            ssl=mailbox.imap_security == Security.SSL,
            ssl_context=_context(),
            timeout=timeout,
        )
        if mailbox.imap_security == Security.STARTTLS:
            client.starttls(_context())
    except (OSError, IMAPClientError, EOFError) as exc:
        raise MailServerError(f"{where}: {describe_network_error(exc)}.") from None
    try:
        try:
            if mailbox.auth_method == AuthMethod.PASSWORD:
                client.login(mailbox.username, password)
            else:  # pragma: no cover - a new method must be added here first
                raise MailServerError(
                    f"{where}: the sign-in method {mailbox.auth_method!r} is not available."
                )
        except LoginError:
            raise MailServerError(
                f"{where}: the server refused the username or password for {mailbox.username}.", auth=True
            ) from None
        except (OSError, IMAPClientError, EOFError) as exc:
            raise MailServerError(f"{where}: {describe_network_error(exc)}.") from None
        yield client
    finally:
        try:
            client.logout()
        except Exception:  # the session is over either way (dropped, already closed)
            with contextlib.suppress(Exception):
                client.shutdown()


def smtp_open(mailbox: Mailbox, *, timeout: float = TIMEOUT_SECONDS) -> smtplib.SMTP:
    """A logged-in SMTP session on the mailbox's server (the caller quits it)."""
    where = f"SMTP {mailbox.smtp_host}:{mailbox.smtp_port}"
    if not mailbox.smtp_host:
        raise MailServerError("No SMTP server is set for this mailbox.")
    password = _secret(mailbox)
    try:
        if mailbox.smtp_security == Security.SSL:
            server: smtplib.SMTP = smtplib.SMTP_SSL(
                mailbox.smtp_host, mailbox.smtp_port, timeout=timeout, context=_context()
            )
        else:
            server = smtplib.SMTP(mailbox.smtp_host, mailbox.smtp_port, timeout=timeout)
            if mailbox.smtp_security == Security.STARTTLS:
                server.starttls(context=_context())
    except (OSError, smtplib.SMTPException) as exc:
        raise MailServerError(f"{where}: {describe_network_error(exc)}.") from None
    try:
        if mailbox.auth_method == AuthMethod.PASSWORD:
            server.login(mailbox.username, password)
    except smtplib.SMTPAuthenticationError:
        server.close()
        raise MailServerError(
            f"{where}: the server refused the username or password for {mailbox.username}.", auth=True
        ) from None
    except smtplib.SMTPNotSupportedError:
        server.close()
        raise MailServerError(f"{where}: the server does not offer a login (AUTH).") from None
    except (OSError, smtplib.SMTPException) as exc:
        server.close()
        raise MailServerError(f"{where}: {describe_network_error(exc)}.") from None
    return server
