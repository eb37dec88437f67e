"""The service secret: key of webhook signatures and of credentials encrypted at rest.

SERVICE_SECRET from the configuration wins. Otherwise a secret is generated on first start and
kept in VAR_DIR/service-secret (mode 0600), never in Redis, so a copy of the Redis data alone
does not reveal encrypted credentials. Every process records a fingerprint of its secret in Redis;
a process whose secret differs from the recorded one (a second host without the same
SERVICE_SECRET) refuses to start instead of signing and decrypting with the wrong key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

import redis

from .config import Config
from .errors import ConfigError
from .keys import Keys

FILE_NAME = "service-secret"


def service_secret(config: Config) -> str:
    if config.SERVICE_SECRET:
        return config.SERVICE_SECRET
    path = os.path.join(config.VAR_DIR, FILE_NAME)
    try:
        return _read_or_create(path)
    except OSError as exc:
        raise ConfigError(f"SERVICE_SECRET: unset, and {path} cannot be kept ({exc.strerror})") from None


def _read_or_create(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32) + "\n")
    try:
        os.link(tmp, path)  # atomic, and fails if a concurrent process created it first
    except FileExistsError:
        pass
    finally:
        os.remove(tmp)
    with open(path) as f:
        return f.read().strip()


def fingerprint(secret: str) -> str:
    return hmac.new(secret.encode(), b"mailpulse fingerprint", hashlib.sha256).hexdigest()[:16]


def check_shared_secret(conn: redis.Redis, keys: Keys, secret: str) -> None:
    mine = fingerprint(secret)
    conn.set(keys.secret_fingerprint, mine, nx=True)
    recorded = (conn.get(keys.secret_fingerprint) or b"").decode()
    if not hmac.compare_digest(recorded, mine):
        raise ConfigError("SERVICE_SECRET: differs from the one the other processes on this Redis "
                          "use; set the same SERVICE_SECRET on every host")
