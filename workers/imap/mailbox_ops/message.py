"""One message: its headers, addresses, flags, text ids and attachments; its texts, decoded."""

from __future__ import annotations

import email.headerregistry
import email.parser
import email.policy

from shared.mail.message_ids import attachment_id, text_id

from ..mailbox import flag_list
from ..message_parts import Part, clean, decode_part, parts_of
from .selecting import ApiError, fetch_message

TEXT_MAX = 2 * 1024 * 1024  # bytes of one text part returned inline; the rest is `hasMore`


class _HeaderClasses(email.headerregistry.HeaderRegistry):
    """The stdlib registry makes a new class for every header it parses (~13 us each); this one
    makes each of its few classes once."""

    def __init__(self):
        super().__init__()
        self._made: dict[type, type] = {}

    def __getitem__(self, name: str) -> type:
        kind = self.registry.get(name.lower(), self.default_class)
        made = self._made.get(kind)
        if made is None:
            made = self._made[kind] = type("_" + kind.__name__, (kind, self.base_class), {})
        return made


POLICY = email.policy.default.clone(header_factory=_HeaderClasses())


class ParsedHeaders:
    """A message's headers, each parsed once by the modern policy (its parse is most of the cost
    of answering: Message.get parses again on every access)."""

    def __init__(self, raw: bytes):
        # Split by the compat32 policy, whose raw values are the modern one's (the same
        # header_source_parse) but which does not parse Content-Type once more on the way.
        msg = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw or b"")
        self.values: dict[str, list] = {}  # lower-case name -> parsed values, None if unparsable
        for name, value in msg.raw_items():
            try:
                parsed = POLICY.header_fetch_parse(name, value)
            except Exception:  # noqa: BLE001 - a header the parser cannot make sense of
                parsed = None
            self.values.setdefault(name.lower(), []).append(parsed)

    def _first(self, name: str):
        return (self.values.get(name) or [None])[0]

    def text(self, name: str) -> str:
        value = self._first(name)
        return clean(str(value)) if value is not None else ""

    def addresses(self, name: str) -> list[dict]:
        try:
            addresses = getattr(self._first(name), "addresses", None) or ()
            return [{"name": clean(a.display_name), "address": clean(a.addr_spec)} for a in addresses]
        except Exception:  # noqa: BLE001 - malformed address lists read as none
            return []

    def all(self) -> dict[str, list[str]]:
        """Every header by lower-case name; one that does not parse reads as an empty list."""
        return {name: [clean(str(v)) for v in values] if None not in values else []
                for name, values in self.values.items()}


def _texts(parts: list[Part]) -> tuple[list[Part], list[Part]]:
    texts = [p for p in parts if p.is_text]
    return ([p for p in texts if p.content_type == "text/plain"],
            [p for p in texts if p.content_type == "text/html"])


def _read_texts(client, uid: int, chosen: list[Part]) -> tuple[dict[str, str], bool]:
    """The decoded text of each part (by section), and whether any was cut at TEXT_MAX."""
    if not chosen:
        return {}, False
    items = [f"BODY.PEEK[{p.section}]<0.{TEXT_MAX}>" for p in chosen]
    found = client.fetch([uid], items).get(uid, {})
    texts, more = {}, False
    for part in chosen:
        raw = next((v for k, v in found.items() if k.startswith(f"BODY[{part.section}]".encode())), b"")
        more = more or len(raw or b"") >= TEXT_MAX
        texts[part.section] = decode_part(raw or b"", part)
    return texts, more


def _text_body(client, uid: int, plain: list[Part], html: list[Part], text_type: str) -> dict:
    chosen = (plain if text_type in ("plain", "*") else []) + (html if text_type in ("html", "*") else [])
    texts, more = _read_texts(client, uid, chosen)
    body: dict = {}
    if text_type in ("plain", "*"):
        body["plain"] = "\n".join(texts[p.section] for p in plain)
    if text_type in ("html", "*"):
        body["html"] = "\n".join(texts[p.section] for p in html)
    body["hasMore"] = more
    return body


def _embedded(part: Part) -> bool:
    return part.in_related and bool(part.content_id)


def get_message(client, params: dict, replier) -> None:
    item = fetch_message(client, params, ["UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "BODYSTRUCTURE",
                                          "BODY.PEEK[HEADER]"])
    path, uidvalidity, uid = params["path"], params["uidvalidity"], params["uid"]
    headers = ParsedHeaders(item.get(b"BODY[HEADER]"))
    parts = parts_of(item[b"BODYSTRUCTURE"])
    plain, html = _texts(parts)
    flags = flag_list(item.get(b"FLAGS"))
    date = item.get(b"INTERNALDATE")
    from_ = headers.addresses("from")
    body = {
        "id": params["id"], "uid": uid, "path": path,
        "date": date.isoformat() if date else None, "size": item.get(b"RFC822.SIZE"),
        "flags": flags, "unseen": "\\Seen" not in flags,
        "subject": headers.text("subject"), "from": from_[0] if from_ else None,
        "sender": (headers.addresses("sender") or [None])[0],
        "to": headers.addresses("to"), "cc": headers.addresses("cc"),
        "bcc": headers.addresses("bcc"), "replyTo": headers.addresses("reply-to"),
        "messageId": headers.text("message-id"), "inReplyTo": headers.text("in-reply-to"),
        "headerDate": headers.text("date"),
        "headers": headers.all(),
        "text": {"id": text_id(path, uidvalidity, uid, [p.section for p in plain], [p.section for p in html]),
                 "encodedSize": {"plain": sum(p.encoded_size for p in plain),
                                 "html": sum(p.encoded_size for p in html)}},
        "attachments": [{
            "id": attachment_id(path, uidvalidity, uid, p.section), "contentType": p.content_type,
            "filename": p.filename or None, "encodedSize": p.encoded_size, "size": p.size,
            "contentId": f"<{p.content_id}>" if p.content_id else None,
            "inline": p.disposition == "inline" or (not p.disposition and _embedded(p)),
            "embedded": _embedded(p),
        } for p in parts if not p.is_text],
    }
    if params.get("textType"):
        body["text"].update(_text_body(client, uid, plain, html, params["textType"]))
    replier.reply(200, body)


def get_text(client, params: dict, replier) -> None:
    item = fetch_message(client, params, ["UID", "BODYSTRUCTURE"], what="text")
    parts = {p.section: p for p in parts_of(item[b"BODYSTRUCTURE"])}
    if not all(s in parts and parts[s].is_text for s in params["plain"] + params["html"]):
        raise ApiError(404, f"text {params['id']!r}: no such text")
    plain = [parts[s] for s in params["plain"]]
    html = [parts[s] for s in params["html"]]
    replier.reply(200, _text_body(client, params["uid"], plain, html, params["textType"]))
