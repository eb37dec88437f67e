"""The calling side of the mailbox channel (shared/mail/mailbox_channel.py): find the IMAP process
that holds an account, hand it a request, wait for its reply until the deadline. The web process
calls it for the mailbox API and for submit's references; the submit worker to flag a replied
message `\\Answered`.

The waits are BLPOPs on the request's reply key, through a Redis client of their own whose
socket timeout outlasts the longest wait (the app's client gives up on Redis after 5 s).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator

import redis

from ..keys import Keys
from ..stores import account_input
from ..stores.leases import LeaseTable
from . import mailbox_channel as channel


class ChannelError(Exception):
    """The call could not be answered by the holder; `status` is the HTTP answer."""

    status = 500
    error = "Internal Server Error"


class NoSuchAccount(ChannelError):
    status, error = 404, "Not Found"


class NotConnected(ChannelError):
    status, error = 503, "Service Unavailable"


class DeadlineExceeded(ChannelError):
    status, error = 504, "Gateway Timeout"


class Reply:
    """A holder's answer: status and JSON body (an error's), or the JSON text to send as it is,
    or (stream) headers and the body's chunks."""

    def __init__(self, status: int, body: dict | None = None, headers: dict | None = None,
                 chunks: Iterator[bytes] | None = None, text: bytes | None = None):
        self.status, self.headers, self.chunks = status, headers or {}, chunks
        self.text = text  # a successful answer's JSON text, as the client gets it
        self._body = body
        self.complete = chunks is None  # a stream: True once its end came (not a failure midway)

    @property
    def body(self) -> dict | None:
        """The JSON body; a passed-through answer's is decoded only for a caller that reads it."""
        if self._body is None and self.text is not None:
            self._body = json.loads(self.text)
        return self._body


class MailboxChannel:
    def __init__(self, conn: redis.Redis, keys: Keys, timeout: float):
        self.conn = conn
        self.keys = keys
        self.leases = LeaseTable(conn, keys)
        self.requests_prefix = keys.imap_requests("")
        self.timeout = timeout

    def call(self, account: str, op: str, params: dict) -> Reply:
        return self._request(account, op, params, streaming=False)

    def stream(self, account: str, op: str, params: dict) -> Reply:
        """The head at once; the body's chunks as an iterator (read by the WSGI server)."""
        return self._request(account, op, params, streaming=True)

    def _request(self, account: str, op: str, params: dict, streaming: bool) -> Reply:
        request_id, deadline = self._send(account, op, params)
        kind, value = self._head(account, request_id, deadline)
        if kind == channel.ANSWER:
            return Reply(value[0], text=value[1])
        if kind != channel.HEAD or (value.get("stream") and not streaming):
            raise ChannelError(f"account {account!r}: the IMAP process answered out of turn")
        if not value.get("stream"):
            return Reply(value["status"], value.get("body") or {})
        reply = Reply(value["status"], headers=value.get("headers"), chunks=iter(()))
        reply.chunks = self._chunks(request_id, reply)
        return reply

    # -- the steps ----------------------------------------------------------------------------
    def _send(self, account: str, op: str, params: dict) -> tuple[str, float]:
        if not account_input.valid_id(account):
            raise NoSuchAccount(f"account {account!r}: no such account")
        request_id = secrets.token_urlsafe(16)
        deadline = time.time() + self.timeout
        # One round trip: the account exists, a live process holds it, the request is on its
        # list (which expires, so the list of a process that died unanswered goes away).
        pushed = self.leases.push_to_holder(account, self.requests_prefix, channel.request(
            request_id, account, op, params, int(deadline * 1000)), int(self.timeout * 2) + 10)
        if pushed < 0:
            raise NoSuchAccount(f"account {account!r}: no such account")
        if pushed == 0:
            raise NotConnected(f"account {account!r} is not connected: no IMAP process holds it now")
        return request_id, deadline

    def _head(self, account: str, request_id: str, deadline: float):
        remaining = deadline - time.time()
        popped = self.conn.blpop([self.keys.api_reply(request_id)], timeout=max(0.01, remaining))
        if popped is None:
            self.conn.set(self.keys.api_gone(request_id), 1, ex=channel.REPLY_TTL)
            raise DeadlineExceeded(f"account {account!r}: the IMAP process did not answer within "
                                   f"{self.timeout:g} s")
        return channel.decode(popped[1])

    def _chunks(self, request_id: str, reply: Reply) -> Iterator[bytes]:
        reply_key = self.keys.api_reply(request_id)
        finished = False
        try:
            while True:
                popped = self.conn.blpop([reply_key], timeout=channel.READER_GONE)
                if popped is None:
                    return  # the holder stopped sending: the body ends short (no Content-Length lie)
                kind, value = channel.decode(popped[1])
                if kind == channel.DATA:
                    yield value
                    continue
                finished = True
                reply.complete = kind == channel.END
                return  # END, or FAILED midway: the client sees a short body
        finally:
            if not finished:  # the client went away (or the holder did): tell it to stop
                try:
                    pipe = self.conn.pipeline()
                    pipe.set(self.keys.api_gone(request_id), 1, ex=channel.REPLY_TTL)
                    pipe.delete(reply_key)
                    pipe.execute()
                except redis.RedisError:
                    pass  # the reply key expires by itself
