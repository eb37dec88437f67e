"""Opaque ids of messages, texts and attachments, stable while the mailbox's UIDVALIDITY holds.

An id is base64url (no padding) of a JSON array, so any process can read it back without a
lookup: a message is [path, uidvalidity, uid]; a text adds the sections of its plain and html
parts; an attachment adds its section. The messageNew webhook carries the same message id, so
a receiver can fetch the message from the webhook alone. Anything that does not decode to one
of these shapes is malformed (the API answers 400 naming the field).
"""

from __future__ import annotations

import base64
import binascii
import json
import re

MAX_ID_LENGTH = 2048
_SECTION = re.compile(r"^[0-9]+(\.[0-9]+)*$")


class MalformedId(ValueError):
    """Not an id of the expected kind: the API answers 400 naming the field."""


def _pack(value: list) -> str:
    raw = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unpack(text: str) -> list:
    if not isinstance(text, str) or not text or len(text) > MAX_ID_LENGTH or not text.isascii():
        raise MalformedId("not an id")
    try:
        value = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise MalformedId("not an id") from None
    if not (isinstance(value, list) and len(value) >= 3 and isinstance(value[0], str) and value[0]
            and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in value[1:3])):
        raise MalformedId("not an id")
    return value


def _section(value) -> str:
    if not isinstance(value, str) or not _SECTION.match(value):
        raise MalformedId("not an id")
    return value


def message_id(path: str, uidvalidity: int, uid: int) -> str:
    return _pack([path, uidvalidity, uid])


def parse_message_id(text: str) -> tuple[str, int, int]:
    value = _unpack(text)
    if len(value) != 3:
        raise MalformedId("not a message id")
    return value[0], value[1], value[2]


def text_id(path: str, uidvalidity: int, uid: int, plain: list[str], html: list[str]) -> str:
    return _pack([path, uidvalidity, uid, plain, html])


def parse_text_id(text: str) -> tuple[str, int, int, list[str], list[str]]:
    value = _unpack(text)
    if len(value) != 5 or not all(isinstance(v, list) for v in value[3:]):
        raise MalformedId("not a text id")
    return value[0], value[1], value[2], [_section(s) for s in value[3]], [_section(s) for s in value[4]]


def attachment_id(path: str, uidvalidity: int, uid: int, section: str) -> str:
    return _pack([path, uidvalidity, uid, section])


def parse_attachment_id(text: str) -> tuple[str, int, int, str]:
    value = _unpack(text)
    if len(value) != 4:
        raise MalformedId("not an attachment id")
    return value[0], value[1], value[2], _section(value[3])
