"""One message: its headers, addresses, flags, text ids and attachments; its texts, decoded."""

from __future__ import annotations

import email.parser
import email.policy

from shared.message_ids import attachment_id, text_id

from ..mailbox import flag_list
from ..message_parts import Part, clean, decode_part, parts_of
from .selecting import ApiError, fetch_one, select_message

TEXT_MAX = 2 * 1024 * 1024  # bytes of one text part returned inline; the rest is `hasMore`


def _headers(raw: bytes):
    return email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(raw or b"")


def _header(msg, name: str) -> str:
    try:
        value = msg.get(name)
        return clean(str(value)) if value is not None else ""
    except Exception:  # noqa: BLE001 - a header the parser cannot make sense of
        return ""


def _header_addresses(msg, name: str) -> list[dict]:
    try:
        value = msg.get(name)
        addresses = value.addresses if value is not None else ()
        return [{"name": clean(a.display_name), "address": clean(a.addr_spec)} for a in addresses]
    except Exception:  # noqa: BLE001 - malformed address lists read as none
        return []


def _all_headers(msg) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for name in msg.keys():
        key = name.lower()
        if key in headers:
            continue
        try:
            headers[key] = [clean(str(v)) for v in msg.get_all(name, [])]
        except Exception:  # noqa: BLE001
            headers[key] = []
    return headers


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
    select_message(client, params)
    item = fetch_one(client, params, ["UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "BODYSTRUCTURE",
                                       "BODY.PEEK[HEADER]"])
    path, uidvalidity, uid = params["path"], params["uidvalidity"], params["uid"]
    msg = _headers(item.get(b"BODY[HEADER]"))
    parts = parts_of(item[b"BODYSTRUCTURE"])
    plain, html = _texts(parts)
    flags = flag_list(item.get(b"FLAGS"))
    date = item.get(b"INTERNALDATE")
    from_ = _header_addresses(msg, "from")
    body = {
        "id": params["id"], "uid": uid, "path": path,
        "date": date.isoformat() if date else None, "size": item.get(b"RFC822.SIZE"),
        "flags": flags, "unseen": "\\Seen" not in flags,
        "subject": _header(msg, "subject"), "from": from_[0] if from_ else None,
        "sender": (_header_addresses(msg, "sender") or [None])[0],
        "to": _header_addresses(msg, "to"), "cc": _header_addresses(msg, "cc"),
        "bcc": _header_addresses(msg, "bcc"), "replyTo": _header_addresses(msg, "reply-to"),
        "messageId": _header(msg, "message-id"), "inReplyTo": _header(msg, "in-reply-to"),
        "headerDate": _header(msg, "date"),
        "headers": _all_headers(msg),
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
    select_message(client, params, what="text")
    item = fetch_one(client, params, ["UID", "BODYSTRUCTURE"], what="text")
    parts = {p.section: p for p in parts_of(item[b"BODYSTRUCTURE"])}
    if not all(s in parts and parts[s].is_text for s in params["plain"] + params["html"]):
        raise ApiError(404, f"text {params['id']!r}: no such text")
    plain = [parts[s] for s in params["plain"]]
    html = [parts[s] for s in params["html"]]
    replier.reply(200, _text_body(client, params["uid"], plain, html, params["textType"]))
