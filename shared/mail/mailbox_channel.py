"""The mailbox API's request/reply channel in Redis, between web and the IMAP process holding
an account (DESIGN section 1: the web process never opens IMAP connections).

A request is JSON {id, account, op, params, deadline} pushed onto the holder's list
(Keys.imap_requests). The IMAP process answers on the request's own list (Keys.api_reply) with
frames, each one Redis list item whose first byte says what it is:

- `J` + status + space + the body: a successful plain answer, its body already the JSON text
  the client gets (encoded once, as Flask's jsonify would: sorted keys, ASCII, compact), so
  the web passes it through as it is;
- `H` + JSON {status, body} or {status, stream: true, headers}: an error's answer (the web
  wraps it in its error shape), or the head of a streamed one;
- `D` + bytes: a chunk of a streamed body (source, attachment), in order;
- `Z`: the end of a streamed body; `X` + JSON {message}: the stream failed midway.

A streamed reply is bounded: the IMAP process waits while MAX_BUFFERED chunks are unread, and
gives up once the web has set Keys.api_gone (its client went away) or read nothing for
READER_GONE seconds. Every reply key expires, so a reader that never comes leaves nothing.
"""

from __future__ import annotations

import json

# The operations an IMAP process serves (workers/imap/mailbox_ops OPS): the closed label set of
# mailpulse_imap_api_requests_total.
OPERATIONS = ("mailboxes", "messages", "message", "text", "source", "attachment", "flags", "move",
              "delete", "search")
CHUNK = 256 * 1024  # bytes per streamed chunk
MAX_BUFFERED = 8  # chunks a streamed reply may hold unread (2 MiB)
READER_GONE = 30.0  # seconds without a chunk read after which the IMAP process stops streaming
REPLY_TTL = 60  # seconds a reply key lives after its last push

ANSWER, HEAD, DATA, END, FAILED = b"J", b"H", b"D", b"Z", b"X"


def request(request_id: str, account: str, op: str, params: dict, deadline_ms: int) -> bytes:
    return json.dumps({"id": request_id, "account": account, "op": op, "params": params,
                       "deadline": deadline_ms}).encode()


def answer(status: int, body: dict) -> bytes:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return ANSWER + b"%d " % status + text.encode() + b"\n"


def head(status: int, body: dict | None = None, stream: bool = False, headers: dict | None = None) -> bytes:
    frame: dict = {"status": status}
    if stream:
        frame.update(stream=True, headers=headers or {})
    else:
        frame["body"] = body if body is not None else {}
    return HEAD + json.dumps(frame).encode()


def failed(message: str) -> bytes:
    return FAILED + json.dumps({"message": message}).encode()


def decode(frame: bytes) -> tuple[bytes, object]:
    """(kind, value): (status, body text) of an answer, the head's or failure's JSON, a chunk's
    bytes, or None for the end."""
    kind, rest = frame[:1], frame[1:]
    if kind == ANSWER:
        status, _, body = rest.partition(b" ")
        return kind, (int(status), body)
    if kind in (HEAD, FAILED):
        return kind, json.loads(rest)
    if kind == DATA:
        return kind, rest
    return kind, None
