"""Mailbox secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256) with keys from the environment.

settings.MAIL_ENCRYPTION_KEYS is a list, newest first: secrets are encrypted with the first and
decrypted with any (MultiFernet), so a key is rotated by prepending the new one and running
`manage.py mail_rotate_secrets`. A key may be a Fernet key or any passphrase (stretched with
HKDF-SHA256 to one). A secret never leaves this module decrypted except to log in to a server."""

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class SecretUnreadable(Exception):
    """The stored secret does not decrypt with any configured key (a key was removed)."""


def _fernet_key(raw: str) -> bytes:
    try:
        if len(base64.urlsafe_b64decode(raw.encode())) == 32:
            return raw.encode()
    except ValueError:
        pass
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"cdp-crm mail secrets", info=b"fernet").derive(
        raw.encode()
    )
    return base64.urlsafe_b64encode(derived)


@functools.cache
def _cipher(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("MAIL_ENCRYPTION_KEYS is empty: mailbox passwords cannot be stored.")
    return MultiFernet([Fernet(_fernet_key(k)) for k in keys])


def _current() -> MultiFernet:
    return _cipher(tuple(settings.MAIL_ENCRYPTION_KEYS))


def secret_encrypt(plain: str) -> str:
    return _current().encrypt(plain.encode()).decode()


def secret_decrypt(token: str) -> str:
    try:
        return _current().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("the stored password cannot be decrypted with the configured keys") from None


def secret_rotate(token: str) -> str:
    """The same secret under the newest key."""
    return _current().rotate(token.encode()).decode()
