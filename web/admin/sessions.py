"""Admin login sessions: a random id in an HttpOnly, SameSite=Strict cookie; the session in Redis.

Redis keeps only the SHA-256 of the id, with the session's CSRF token and the fingerprint of the
password it was made under. A session ends at logout, after IDLE_SECONDS without a request, or
when the password is set again. Failed logins are counted per client address to slow guessing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import redis

from shared.keys import Keys

COOKIE = "mailpulse_admin"
LOGIN_COOKIE = "mailpulse_admin_login"  # double-submit CSRF token of the login form
COOKIE_PATH = "/admin"
IDLE_SECONDS = 8 * 3600
MAX_LOGIN_FAILURES = 10  # per client address within FAILURE_WINDOW
FAILURE_WINDOW = 15 * 60


@dataclass(frozen=True)
class Session:
    id_hash: str
    csrf: str
    created: float


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def tokens_match(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison of CSRF tokens; a missing one never matches."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


class SessionStore:
    def __init__(self, conn: redis.Redis, keys: Keys):
        self.conn = conn
        self.keys = keys

    def create(self, password_fingerprint: str) -> tuple[str, Session]:
        """A new session; returns (the id for the cookie, the session). The id is never stored."""
        session_id = secrets.token_urlsafe(32)
        session = Session(_hash(session_id), secrets.token_urlsafe(32), time.time())
        key = self.keys.admin_session(session.id_hash)
        pipe = self.conn.pipeline()
        pipe.hset(key, mapping={"csrf": session.csrf, "created": session.created,
                                "password": password_fingerprint})
        pipe.expire(key, IDLE_SECONDS)
        pipe.execute()
        return session_id, session

    def load(self, session_id: str | None, password_fingerprint: str) -> Session | None:
        """The live session for a cookie value, renewing its idle timeout; None if there is none."""
        if not session_id or len(session_id) > 100:
            return None
        key = self.keys.admin_session(_hash(session_id))
        pipe = self.conn.pipeline()
        pipe.hgetall(key)
        pipe.expire(key, IDLE_SECONDS)
        data, _ = pipe.execute()
        if not data or not tokens_match(data.get(b"password", b"").decode(), password_fingerprint):
            return None
        return Session(_hash(session_id), data[b"csrf"].decode(), float(data[b"created"]))

    def end(self, session: Session) -> None:
        self.conn.delete(self.keys.admin_session(session.id_hash))

    def login_blocked(self, address: str) -> bool:
        return int(self.conn.get(self.keys.admin_login_failures(address)) or 0) >= MAX_LOGIN_FAILURES

    def count_failure(self, address: str) -> None:
        key = self.keys.admin_login_failures(address)
        pipe = self.conn.pipeline()
        pipe.incr(key)
        pipe.expire(key, FAILURE_WINDOW, nx=True)
        pipe.execute()

    def clear_failures(self, address: str) -> None:
        self.conn.delete(self.keys.admin_login_failures(address))
