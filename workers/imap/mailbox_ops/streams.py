"""Streamed bodies: a message's source and an attachment, range by range."""

from __future__ import annotations

import re
from urllib.parse import quote

from shared.mail import mailbox_channel as channel

from ..message_parts import ChunkDecoder, parts_of
from .selecting import ApiError, fetch_message

_UNSAFE_TYPE = re.compile(r"[^a-z0-9!#$&^_.+\-/]")
_ASCII_NAME = re.compile(r"[^A-Za-z0-9._ -]")


def _stream_section(client, uid: int, section: str, size: int, replier, decoder: ChunkDecoder) -> None:
    """BODY.PEEK[section]<offset.CHUNK> range by range: no process holds more than a few chunks.
    `size` is what the server said; reading stops at the first short range as well."""
    offset = 0
    while True:
        key = f"BODY[{section}]<{offset}>".encode()
        found = client.fetch([uid], [f"BODY.PEEK[{section}]<{offset}.{channel.CHUNK}>"]).get(uid, {})
        data = found.get(key)
        if data is None:
            data = next((v for k, v in found.items() if k.startswith(f"BODY[{section}]".encode())), None)
        if data is None:
            if offset == 0:
                raise ApiError(404, f"message {uid}: gone while it was being read")
            break
        replier.chunk(decoder.feed(data))
        offset += len(data)
        if len(data) < channel.CHUNK or (size and offset >= size):
            break
    replier.chunk(decoder.finish())
    replier.end()


def _filename_header(name: str) -> str:
    fallback = _ASCII_NAME.sub("_", name) or "attachment"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def get_source(client, params: dict, replier) -> None:
    item = fetch_message(client, params, ["UID", "RFC822.SIZE"])
    size = item.get(b"RFC822.SIZE") or 0
    replier.start_stream(200, {"Content-Type": "message/rfc822", "Content-Length": str(size),
                               "Content-Disposition": _filename_header(f"{params['uid']}.eml")})
    _stream_section(client, params["uid"], "", size, replier, ChunkDecoder("binary"))


def get_attachment(client, params: dict, replier) -> None:
    item = fetch_message(client, params, ["UID", "BODYSTRUCTURE"], what="attachment")
    part = next((p for p in parts_of(item[b"BODYSTRUCTURE"]) if p.section == params["section"]), None)
    if part is None:
        raise ApiError(404, f"attachment {params['id']!r}: no such attachment")
    content_type = _UNSAFE_TYPE.sub("", part.content_type) or "application/octet-stream"
    replier.start_stream(200, {"Content-Type": content_type,
                               "Content-Disposition": _filename_header(part.filename or "attachment")})
    _stream_section(client, params["uid"], part.section, part.encoded_size, replier,
                    ChunkDecoder(part.encoding))
