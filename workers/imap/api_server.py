"""The IMAP process's side of the mailbox channel (shared/mail/mailbox_channel.py): pop the API
requests addressed to this process, serve each on a command connection of its account
(workers/imap/command_connections.py, never the IDLE one), reply before the deadline.

At most IMAP_API_CONCURRENCY requests are served at once (further ones wait in the list); a
request whose deadline passed before it started is dropped (the web answered 504 already).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

import gevent
import gevent.pool
import redis

from shared.keys import Keys
from shared.mail import mailbox_channel as channel
from shared.metrics import definitions as metrics
from shared.redis_trouble import RedisTrouble

from . import client as imap
from .command_connections import CommandConnections, NotConfigured
from .mailbox_ops import OPS, ApiError

log = logging.getLogger(__name__)

SERVING_STATES = ("connected", "syncing")
# Replies that could not be sent (the caller gets a 504): counted and logged once per kind.
REPLIES_TROUBLE = RedisTrouble("mailbox API replies", "imap", log, loop=False)


class ReaderGone(Exception):
    """The web stopped reading a streamed reply: stop sending."""


class Replier:
    """Writes one request's reply frames; streams wait while the reader is behind."""

    def __init__(self, conn: redis.Redis, keys: Keys, request_id: str):
        self.conn = conn
        self.key = keys.api_reply(request_id)
        self.gone_key = keys.api_gone(request_id)
        self.done = False

    def _push(self, frame: bytes) -> None:
        pipe = self.conn.pipeline(transaction=False)  # one round trip; MULTI/EXEC would add nothing
        pipe.rpush(self.key, frame)
        pipe.expire(self.key, channel.REPLY_TTL)
        pipe.execute()

    def reply(self, status: int, body: dict) -> None:
        self.done = True
        self._push(channel.answer(status, body) if status < 400 else channel.head(status, body))

    def start_stream(self, status: int, headers: dict) -> None:
        self.done = True
        self._push(channel.head(status, stream=True, headers=headers))

    def chunk(self, data: bytes) -> None:
        if not data:
            return
        waited_since = time.monotonic()
        while self.conn.llen(self.key) >= channel.MAX_BUFFERED:
            if self.conn.exists(self.gone_key) or time.monotonic() - waited_since > channel.READER_GONE:
                raise ReaderGone()
            gevent.sleep(0.01)
        self._push(channel.DATA + data)

    def end(self) -> None:
        self._push(channel.END)

    def fail(self, message: str) -> None:
        self._push(channel.failed(message))


class ApiServer:
    def __init__(self, conn: redis.Redis, listen_conn: redis.Redis, keys: Keys, worker_id: str,
                 connections: CommandConnections, state_of: Callable[[str], str | None], concurrency: int):
        self.conn = conn
        self.listen_conn = listen_conn  # BLPOP holds its connection: not one of the shared pool's
        self.keys = keys
        self.requests_key = keys.imap_requests(worker_id)
        self.connections = connections
        self.state_of = state_of  # account id -> its session's state here, None if not held
        self.pool = gevent.pool.Pool(concurrency)

    def run(self) -> None:
        closer = gevent.spawn(self.connections.run_closer)
        trouble = RedisTrouble("mailbox API requests", "imap", log)
        try:
            while True:
                try:
                    popped = self.listen_conn.blpop([self.requests_key], timeout=1)
                    trouble.succeeded()
                except redis.RedisError as exc:
                    gevent.sleep(trouble.failed(exc))
                    continue
                if popped is not None:
                    self.pool.wait_available()
                    self.pool.spawn(self.serve, popped[1])
        finally:
            closer.kill()
            self.pool.kill(timeout=5)
            self.connections.close_all()

    def serve(self, raw: bytes) -> None:
        try:
            request = json.loads(raw)
            request_id, account, op = request["id"], request["account"], request["op"]
            params, deadline = request["params"], request["deadline"] / 1000
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed mailbox API request")
            return
        if time.time() > deadline:
            log.info("account %s: %s request dropped, its deadline passed before it started", account, op)
            return
        replier = Replier(self.conn, self.keys, request_id)
        try:
            self._serve(replier, account, op, params)
        except ReaderGone:
            log.info("account %s: %s stream stopped, the reader went away", account, op)
        except redis.RedisError as exc:
            REPLIES_TROUBLE.failed(exc)

    def _serve(self, replier: Replier, account: str, op: str, params: dict) -> None:
        handler = OPS.get(op)
        if handler is None:
            replier.reply(400, {"message": f"unknown operation {op!r}"})
            return
        if self.state_of(account) not in SERVING_STATES:
            replier.reply(503, {"message": f"account {account!r} is not connected "
                                           f"(state {self.state_of(account) or 'not held'})"})
            return
        try:
            self._run(op, handler, replier, account, params)
        except ApiError as exc:
            if replier.done:
                replier.fail(exc.message)
            else:
                replier.reply(exc.status, exc.body())
        except (imap.AuthFailed, imap.ConnectFailed, NotConfigured) as exc:
            self._unavailable(replier, account, f"its IMAP server refused a connection: {exc}")
        except imap.CONNECTION_LOST + imap.PROTOCOL_ERRORS as exc:
            self._unavailable(replier, account, f"IMAP command failed: {imap.describe(exc)}")
        except (ReaderGone, redis.RedisError):
            raise
        except Exception:  # a bug: answer 500 at once rather than let the caller wait for 504
            log.exception("account %s: mailbox API %s failed", account, op)
            if replier.done:
                replier.fail("internal error")
            else:
                replier.reply(500, {"message": f"account {account!r}: {op} failed (see the IMAP log)"})

    def _run(self, op: str, handler, replier: Replier, account: str, params: dict) -> None:
        """The operation on a command connection. A kept connection that turns out closed before
        anything was answered (the server dropped it meanwhile: a timeout, its selected mailbox
        deleted) is replaced once; a new one that fails is a failure."""
        for attempt in (1, 2):
            reused = False
            try:
                with self.connections.client(account) as client:
                    reused = not client.fresh
                    if attempt == 1:  # counted once, once a connection serves it
                        metrics.safely(metrics.imap_api_requests.labels(op=op).inc)
                    handler(client, params, replier)
                return
            except imap.CONNECTION_LOST as exc:
                if attempt == 2 or not reused or replier.done:
                    raise
                log.info("account %s: a kept command connection was closed (%s); retrying on a new one",
                         account, imap.describe(exc))

    def _unavailable(self, replier: Replier, account: str, why: str) -> None:
        log.info("account %s: mailbox API call failed: %s", account, why)
        if replier.done:
            replier.fail(why)
        else:
            replier.reply(503, {"message": f"account {account!r} is not connected: {why}"})
