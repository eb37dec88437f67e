"""The pooled keep-alive HTTP client of one webhooks process (urllib3; cooperative under gevent).

One POST per attempt: no redirects followed, no automatic retries (the queue retries), a total
deadline per attempt, and the egress policy checked before connecting and on the connected peer.
"""

from __future__ import annotations

import gevent
import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import HTTPError
from urllib3.util import parse_url

from .egress import EgressRefused, check_address, check_host


class TransportError(Exception):
    """No HTTP answer (refused, reset, timed out, bad response): a later attempt may succeed."""


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

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """POST and return the status code. Raises EgressRefused (give up) or TransportError."""
        parts = parse_url(url)
        if parts.scheme not in ("http", "https") or not parts.host:
            raise EgressRefused(f"not an http(s) URL: {parts.scheme}://")
        try:
            check_host(parts.host, parts.port or (443 if parts.scheme == "https" else 80))
        except OSError as exc:
            raise TransportError(f"cannot resolve {parts.host}: {exc}") from None
        headers = {"Content-Type": "application/json", "User-Agent": self.user_agent, **headers}
        try:
            with gevent.Timeout(self.timeout, TransportError(f"no answer within {self.timeout:g} s")):
                response = self.pool.request("POST", url, body=body, headers=headers,
                                             redirect=False, retries=False)
        except HTTPError as exc:
            raise TransportError(_describe(exc)) from None
        except OSError as exc:
            raise TransportError(str(exc)) from None
        return response.status

    def close(self) -> None:
        self.pool.clear()


def _describe(exc: HTTPError) -> str:
    reason = getattr(exc, "reason", None)
    return f"{type(exc).__name__}: {reason or exc}"
