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
    server = Dovecot().start()
    yield server
    server.stop()


@pytest.fixture
def imap_user(dovecot):
    """(username, password) of a fresh IMAP account with an empty INBOX and Sent."""
    return f"rep{next(_users)}@ourco.test", dovecot.password
