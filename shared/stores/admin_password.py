"""The admin pages' password: set with `mailpulse admin password`, kept as an scrypt hash in Redis.

The record is `scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>`. Sessions remember the salt they were
made under (`fingerprint`), so setting a new password ends every session made with the old one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

import redis

from ..keys import Keys

N, R, P = 2**15, 8, 1  # ~32 MiB and ~0.1 s per hash: slow for guessing, fine for a login
MAXMEM = 64 * 1024 * 1024
MIN_LENGTH = 8
MAX_LENGTH = 1024


class AdminPasswordError(ValueError):
    """A password that cannot be used (too short, too long); show the message."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hash_password(password: str, salt: bytes | None = None, n: int = N, r: int = R, p: int = P) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=MAXMEM, dklen=32)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def check_password(password: str, record: str) -> bool:
    """True when `password` matches the record; the digests are compared in constant time."""
    try:
        scheme, n, r, p, salt, digest = record.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r),
                                p=int(p), maxmem=MAXMEM, dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def fingerprint(record: str) -> str:
    """Identifies one setting of the password without revealing anything about it (its salt)."""
    return hashlib.sha256(record.split("$")[4].encode()).hexdigest()[:16]


def validate(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise AdminPasswordError(f"the password must have at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise AdminPasswordError(f"the password must have at most {MAX_LENGTH} characters")
    return password


class AdminPassword:
    def __init__(self, conn: redis.Redis, keys: Keys):
        self.conn = conn
        self.keys = keys

    def record(self) -> str | None:
        raw = self.conn.get(self.keys.admin_password)
        return raw.decode() if raw else None

    def set(self, password: str) -> None:
        self.conn.set(self.keys.admin_password, hash_password(validate(password)))
