"""Credentials encrypted at rest with a key derived from the service secret.

Fernet (AES-128-CBC + HMAC-SHA256) from `cryptography`: authenticated, so a tampered or foreign
ciphertext is refused rather than decrypted into garbage. The key is derived with HKDF so the raw
service secret (which also signs webhooks) is never used as an encryption key directly.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class CredentialsUnreadable(Exception):
    """A stored secret that this service secret cannot decrypt: the account cannot log in."""


class Cipher:
    def __init__(self, service_secret: str):
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                   info=b"mailpulse credentials v1").derive(service_secret.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str | bytes) -> str:
        try:
            return self._fernet.decrypt(token).decode()
        except InvalidToken:
            raise CredentialsUnreadable("stored credentials do not match this SERVICE_SECRET") from None
