"""Bearer-token authentication for /metrics and /v1/* (DESIGN section 5).

Checking a token and recording its last use are one round trip (a script). Recording is best
effort: a Redis that refuses writes (a full disk, maxmemory, an ACL) never turns a valid token
away; the token is then checked by a read alone. While Redis cannot be read at all, a token
this process verified within the last VERIFIED_FOR seconds is still accepted, so /metrics keeps
serving the process metrics through an outage or a failover. Once Redis answers, every token is
checked there again (a revoked one is refused at once).
"""

from __future__ import annotations

import threading
import time

import redis
from flask import current_app, jsonify, request

from shared.redis_trouble import RedisTrouble
from shared.stores.tokens import Token, hash_token

from .collectors.guarded import found_unreachable

VERIFIED_FOR = 600.0  # seconds a verified token outlives a Redis that cannot be read
MAX_REMEMBERED = 1000


def error_response(status: int, error: str, message: str, extra: dict | None = None, **headers):
    """The JSON error answer; `extra` adds fields to the body (such as `fields` of a 400)."""
    response = jsonify({"statusCode": status, "error": error, "message": message, **(extra or {})})
    response.status_code = status
    response.headers.update(headers)
    return response


def presented_token() -> str | None:
    """The token from `Authorization: Bearer`, or `?access_token=` when no header is sent."""
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        return value.strip() if scheme.lower() == "bearer" else None
    return request.args.get("access_token")


class VerifiedTokens:
    """Tokens verified lately, by hash: consulted only when Redis cannot be read."""

    def __init__(self):
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[Token, float]] = {}
        self.last_use = RedisTrouble("token last-use update", "web", loop=False)

    def remember(self, token: Token) -> None:
        with self._lock:
            if len(self._seen) >= MAX_REMEMBERED:
                self._seen.pop(next(iter(self._seen)))
            self._seen[token.hash] = (token, time.monotonic())

    def recall(self, presented: str | None) -> Token | None:
        if not presented:
            return None
        with self._lock:
            found = self._seen.get(hash_token(presented))
        if found is None or time.monotonic() - found[1] > VERIFIED_FOR:
            return None
        return found[0]

    def verify(self, store, presented: str | None, ip: str | None) -> Token | None:
        """The token, its use recorded in the same round trip; when Redis refuses the write
        (full, read-only, an ACL), checked by a read alone. Raises redis.RedisError when Redis
        cannot be read."""
        try:
            token = store.verify_and_record(presented, ip)
        except redis.ResponseError as exc:
            with self._lock:
                self.last_use.failed(exc)
            return store.verify(presented)
        if self.last_use.kind is not None:
            with self._lock:
                self.last_use.succeeded()
        return token


def require_scope(scope: str) -> tuple[Token | None, object | None]:
    """(token, None) when allowed, else (None, the 401/403 response to send).

    Raises redis.RedisError (503) when Redis cannot be read and the token was not verified lately.
    """
    store, verified = current_app.config["TOKENS"], current_app.config["VERIFIED_TOKENS"]
    presented = presented_token()
    try:
        token = verified.verify(store, presented, request.remote_addr)
    except redis.RedisError as exc:
        found_unreachable(exc)
        token = verified.recall(presented)
        if token is None:
            raise
    else:
        if token is not None:
            verified.remember(token)
    if token is None:
        return None, error_response(401, "Unauthorized", "Missing or invalid access token",
                                    **{"WWW-Authenticate": "Bearer"})
    if not token.allows(scope):
        return None, error_response(403, "Forbidden", f"This token does not have the {scope!r} scope")
    return token, None
