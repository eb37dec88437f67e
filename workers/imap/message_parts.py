"""A message's structure from its BODYSTRUCTURE, and the decoding of its parts.

Nothing here needs the whole message: the parts are found from BODYSTRUCTURE, texts fetched by
section, attachments decoded chunk by chunk (ChunkDecoder), so a 20 MB attachment is never held
whole. Text in a charset Python does not know, or bytes that are not valid in theirs, come back
with replacement characters; header values that do not decode likewise. Nothing here raises on
a message's content.
"""

from __future__ import annotations

import binascii
import codecs
import quopri
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from .sync import _text as decode_header_text


@dataclass
class Part:
    section: str  # IMAP section number, "1", "1.2"
    content_type: str  # "text/plain"
    params: dict[str, str]
    content_id: str
    encoding: str  # "base64", "quoted-printable", "7bit", ...
    encoded_size: int
    disposition: str  # "", "inline", "attachment"
    disposition_params: dict[str, str]
    in_related: bool  # a child of multipart/related (an embedded image, say)

    @property
    def filename(self) -> str:
        return _param(self.disposition_params, "filename") or _param(self.params, "name")

    @property
    def charset(self) -> str:
        return self.params.get("charset", "") or "utf-8"

    @property
    def is_text(self) -> bool:
        return (self.content_type in ("text/plain", "text/html") and self.disposition != "attachment"
                and not self.filename)

    @property
    def size(self) -> int:
        """Decoded size: exact but for base64, where it is estimated from the encoded size
        (76 characters and CRLF per line, 3 bytes per 4 characters)."""
        if self.encoding == "base64":
            return self.encoded_size * 76 // 78 * 3 // 4
        return self.encoded_size


def _str(value) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _pairs(values) -> dict[str, str]:
    if not isinstance(values, (tuple, list)):
        return {}
    items = [_str(v) for v in values]
    return {items[i].lower(): items[i + 1] for i in range(0, len(items) - 1, 2)}


def _param(params: dict[str, str], name: str) -> str:
    """A parameter, RFC 2231 (`name*`, `name*0*`) and RFC 2047 encodings decoded."""
    if name + "*" in params:
        return _rfc2231(params[name + "*"])
    if name + "*0*" in params or name + "*0" in params:
        pieces, n = [], 0
        while f"{name}*{n}*" in params or f"{name}*{n}" in params:
            pieces.append(params.get(f"{name}*{n}*", params.get(f"{name}*{n}", "")))
            n += 1
        return _rfc2231("".join(pieces)) if f"{name}*0*" in params else "".join(pieces)
    return decode_header_text(params.get(name, "")) if params.get(name) else ""


def _rfc2231(value: str) -> str:
    """`utf-8'en'na%C3%AFve.txt` -> `naïve.txt`."""
    charset, _, text = value.split("'", 2) if value.count("'") >= 2 else ("", "", value)
    return decode_bytes(unquote_to_bytes(text), charset or "utf-8")


def _disposition(value) -> tuple[str, dict[str, str]]:
    if isinstance(value, (tuple, list)) and value:
        return _str(value[0]).lower(), _pairs(value[1] if len(value) > 1 else None)
    return "", {}


def parts_of(structure) -> list[Part]:
    """Every leaf part of a BODYSTRUCTURE (imapclient's BodyData), depth first, with its section."""
    found: list[Part] = []
    _walk(structure, "", found, False)
    return found


def _walk(node, prefix: str, found: list[Part], in_related: bool) -> None:
    if isinstance(node[0], list):  # multipart: (children, subtype, params, disposition, ...)
        related = _str(node[1]).lower() == "related"
        for n, child in enumerate(node[0], 1):
            _walk(child, f"{prefix}.{n}" if prefix else str(n), found, related)
        return
    media = f"{_str(node[0]).lower()}/{_str(node[1]).lower()}"
    if media == "message/rfc822":
        extension = 10
    elif media.startswith("text/"):
        extension = 8
    else:
        extension = 7
    disposition = node[extension + 1] if len(node) > extension + 1 else None
    kind, params = _disposition(disposition)
    size = node[6] if len(node) > 6 and isinstance(node[6], int) else 0
    found.append(Part(prefix or "1", media, _pairs(node[2]), _str(node[3]).strip("<>"),
                      _str(node[5]).lower() if len(node) > 5 else "7bit", size, kind, params, in_related))


def decode_bytes(raw: bytes, charset: str) -> str:
    """Text in its charset; an unknown charset is read as UTF-8, bad bytes become U+FFFD."""
    try:
        codecs.lookup(charset)
    except LookupError:
        charset = "utf-8"
    try:
        return raw.decode(charset, "replace")
    except (LookupError, ValueError):  # a codec that cannot replace (such as a bytes-only one)
        return raw.decode("utf-8", "replace")


def clean(text: str) -> str:
    """A header string from email's parser with its undecodable bytes (surrogates) replaced."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


class ChunkDecoder:
    """Content-Transfer-Encoding undone chunk by chunk: a base64 group or a quoted-printable
    line cut by a chunk's end waits for the next chunk."""

    def __init__(self, encoding: str):
        self.encoding = encoding
        self.carry = b""

    def feed(self, data: bytes) -> bytes:
        if self.encoding == "base64":
            data = self.carry + data.translate(None, b" \t\r\n")  # line breaks, in C
            cut = len(data) - len(data) % 4
            self.carry = data[cut:]
            return _b64(data[:cut])
        if self.encoding == "quoted-printable":
            data = self.carry + data
            cut = data.rfind(b"\n") + 1
            self.carry = data[cut:]
            return quopri.decodestring(data[:cut])
        return data

    def finish(self) -> bytes:
        rest, self.carry = self.carry, b""
        if self.encoding == "base64":
            return _b64(rest + b"=" * (-len(rest) % 4)) if rest.strip(b"=") else b""
        if self.encoding == "quoted-printable":
            return quopri.decodestring(rest)
        return rest


def _b64(data: bytes) -> bytes:
    try:
        return binascii.a2b_base64(data)
    except binascii.Error:  # bad padding midway: decode what decodes, group by group
        out = bytearray()
        for start in range(0, len(data), 4):
            try:
                out += binascii.a2b_base64(data[start:start + 4])
            except binascii.Error:
                continue
        return bytes(out)


def decode_part(raw: bytes, part: Part) -> str:
    """A text part as text, line ends as in Python (\n), as email's get_content() gives them."""
    decoder = ChunkDecoder(part.encoding)
    return decode_bytes(decoder.feed(raw) + decoder.finish(), part.charset).replace("\r\n", "\n")
