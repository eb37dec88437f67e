"""Receiver output is untrusted text: read bounded, stored bounded and printable (DESIGN section 4).

A receiver's status line, headers, body and the errors they cause reach the job's exception (shown
by rq-dashboard), the API's webhookErrorFlag and the admin pages. Whatever a receiver sends, what
is stored is at most TEXT_LIMIT characters of printable text: control and other non-printable
characters (escape sequences, NUL, line breaks, bidi overrides) become a space. Pages still
escape it when they show it: printable text may hold markup.
"""

from __future__ import annotations

import re
import unicodedata

BODY_LIMIT = 1024  # bytes of a response body read at most; the rest is discarded unread
TEXT_LIMIT = 300  # characters of receiver-derived text stored per attempt
_USERINFO = re.compile(r"(?<=//)[^/@\s]*@")


def printable(text: str, limit: int = TEXT_LIMIT) -> str:
    """`text` as one line of printable characters, at most `limit` long (an ellipsis marks a cut)."""
    kept = "".join(ch if ch.isprintable() and unicodedata.category(ch) != "Cf" else " " for ch in text)
    kept = " ".join(kept.split())
    return kept if len(kept) <= limit else kept[:limit - 1] + "…"


def body_excerpt(raw: bytes) -> str:
    """The start of a response body as text (undecodable bytes replaced)."""
    return raw[:BODY_LIMIT].decode("utf-8", "replace")


def without_userinfo(url: str) -> str:
    """The URL with any `user:password@` removed: what logs, errors and pages may show."""
    return _USERINFO.sub("", url, count=1)
