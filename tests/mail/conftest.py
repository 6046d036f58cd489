import itertools

import pytest

from tests.mail.imap_server import NOT_RUN, Dovecot, dovecot_missing

_users = itertools.count(1)


@pytest.fixture(scope="session")
def dovecot():
    """One real Dovecot for the session (started by the first test that asks); each test makes
    its own IMAP user, so tests never see each other's mail."""
    if why := dovecot_missing():
        pytest.skip(f"{NOT_RUN}: {why}")
    # A free port is free when asked, not always when Dovecot binds it (another process may take
    # it in between): a start that fails is retried on a new port, with the last log if all fail.
    for attempt in range(3):
        server = Dovecot()
        try:
            server.start()
            break
        except RuntimeError:
            server.stop()
            if attempt == 2:
                raise
    yield server
    server.stop()


@pytest.fixture
def imap_user(dovecot):
    """(username, password) of a fresh IMAP account with an empty INBOX and Sent."""
    return f"rep{next(_users)}@ourco.test", dovecot.password


@pytest.fixture(scope="session")
def smtp_session_server():
    from tests.mail.smtp_server import SmtpServer

    for attempt in range(3):  # the free port may be taken before it binds: a new one
        try:
            server = SmtpServer().start()
            break
        except (OSError, RuntimeError):
            if attempt == 2:
                raise
    yield server
    server.stop()


@pytest.fixture
def smtp_server(smtp_session_server):
    """A real SMTP server (aiosmtpd, AUTH required) with nothing received and no rejection
    queued; `.received` lists what it accepted, `.reject_next("451 ...")` refuses the next."""
    smtp_session_server.reset()
    yield smtp_session_server
    smtp_session_server.reset()
