"""The pooled keep-alive HTTP client of one webhooks process (urllib3; cooperative under gevent).

One POST per attempt: no redirects followed, no automatic retries (the queue retries), a total
deadline per attempt, and the egress policy checked before connecting and on the connected peer.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

import gevent
import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import HTTPError
from urllib3.util import parse_url

from .egress import EgressRefused, check_address, check_host
from .untrusted import BODY_LIMIT, body_excerpt


class TransportError(Exception):
    """No HTTP answer (refused, reset, timed out, bad response): a later attempt may succeed."""


@dataclass(frozen=True)
class Answer:
    """What a receiver answered; `reason` and `body` are untrusted (at most BODY_LIMIT bytes read)."""

    status: int
    reason: str
    body: str


def _check_peer(sock) -> None:
    try:
        check_address(sock.getpeername()[0])
    except EgressRefused:
        sock.close()
        raise


class _GuardedHTTPConnection(HTTPConnection):
    def _new_conn(self):
        sock = super()._new_conn()
        _check_peer(sock)
        return sock


class _GuardedHTTPSConnection(HTTPSConnection):
    def _new_conn(self):
        sock = super()._new_conn()
        _check_peer(sock)
        return sock


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class WebhookClient:
    def __init__(self, concurrency: int, timeout: float, user_agent: str):
        self.timeout = timeout
        self.user_agent = user_agent
        # maxsize: as many kept-alive connections per receiver as deliveries in flight.
        self.pool = urllib3.PoolManager(num_pools=100, maxsize=concurrency, block=False,
                                        timeout=urllib3.Timeout(connect=timeout, read=timeout),
                                        retries=False)
        self.pool.pool_classes_by_scheme = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        """POST and return the answer. Raises EgressRefused (give up) or TransportError.

        The URL's user info (`https://user:pass@host/`) is sent as HTTP Basic auth, never as part
        of the URL. At most BODY_LIMIT bytes of the answer are read: a longer body is discarded
        by closing the connection rather than reading it (the pool opens a new one next time).
        """
        parts = parse_url(url)
        if parts.scheme not in ("http", "https") or not parts.host:
            raise EgressRefused(f"not an http(s) URL: {parts.scheme}://")
        headers = {"Content-Type": "application/json", "User-Agent": self.user_agent, **headers}
        if parts.auth:
            user, _, password = parts.auth.partition(":")
            basic = urllib3.make_headers(basic_auth=f"{unquote(user)}:{unquote(password)}")["authorization"]
            headers["Authorization"] = basic
            url = parts._replace(auth=None).url
        try:
            # Resolution counts within the attempt's deadline, like the request itself.
            with gevent.Timeout(self.timeout, TransportError(f"no answer within {self.timeout:g} s")):
                try:
                    check_host(parts.host, parts.port or (443 if parts.scheme == "https" else 80))
                except OSError as exc:
                    raise TransportError(f"cannot resolve {parts.host}: {exc}") from None
                response = self.pool.request("POST", url, body=body, headers=headers, redirect=False,
                                             retries=False, preload_content=False)
                raw = b""
                try:
                    raw = response.read(BODY_LIMIT + 1, decode_content=False)
                finally:
                    if len(raw) > BODY_LIMIT:
                        response.close()  # more than we read: drop the connection, unread
                    response.release_conn()
        except HTTPError as exc:
            raise TransportError(_describe(exc)) from None
        except OSError as exc:
            raise TransportError(str(exc)) from None
        return Answer(response.status, response.reason or "", body_excerpt(raw))

    def close(self) -> None:
        self.pool.clear()


def _describe(exc: HTTPError) -> str:
    reason = getattr(exc, "reason", None)
    return f"{type(exc).__name__}: {reason or exc}"
