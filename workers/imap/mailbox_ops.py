"""The mailbox API's operations, each on one command connection: EmailEngine's JSON shapes.

An operation takes (client, params, replier): params as the web checked them, the replier to
answer (or to stream). What the caller should answer instead is raised as ApiError (404 naming
the mailbox, message, text or attachment; 400 naming a field); connection failures propagate.
"""

from __future__ import annotations

import email.parser
import email.policy
import imaplib
import math
import re
from urllib.parse import quote

from imapclient import exceptions

from shared import mailbox_channel as channel
from shared.message_ids import attachment_id, message_id, text_id

from .mailbox import flag_list
from .message_parts import ChunkDecoder, Part, clean, decode_part, parts_of
from .sync import SPECIAL_USE, _addresses, _text

TEXT_MAX = 2 * 1024 * 1024  # bytes of one text part returned inline; the rest is `hasMore`
LIST_ITEMS = ["UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"]
_UNSAFE_TYPE = re.compile(r"[^a-z0-9!#$&^_.+\-/]")
_ASCII_NAME = re.compile(r"[^A-Za-z0-9._ -]")


class ApiError(Exception):
    def __init__(self, status: int, message: str, fields: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.fields = status, message, fields

    def body(self) -> dict:
        return {"message": self.message, **({"fields": self.fields} if self.fields else {})}


def _refused(exc: Exception) -> bool:
    return isinstance(exc, (imaplib.IMAP4.error, exceptions.IMAPClientError)) and not isinstance(
        exc, imaplib.IMAP4.abort)


# -- selecting ---------------------------------------------------------------------------------
def select(client, path: str, readonly: bool = True) -> dict:
    """Select (EXAMINE when readonly) `path`; 404 naming it if the server refuses."""
    try:
        info = client.select_folder(path, readonly=readonly)
    except Exception as exc:
        if _refused(exc):
            client.selected = None
            raise ApiError(404, f"mailbox {path!r}: no such mailbox") from None
        raise
    client.selected = (path, readonly)
    return info


def select_message(client, params: dict, readonly: bool = True, what: str = "message") -> None:
    """Select the message's mailbox; 404 unless it is the generation the id was made in."""
    info = select(client, params["path"], readonly)
    if info.get(b"UIDVALIDITY") != params["uidvalidity"]:
        raise ApiError(404, f"{what} {params['id']!r}: no such {what} (its mailbox was reset)")


def _fetch_one(client, params: dict, items: list, what: str = "message") -> dict:
    found = client.fetch([params["uid"]], items, modifiers=None) if items else {}
    item = found.get(params["uid"])
    if item is None:
        raise ApiError(404, f"{what} {params['id']!r}: no such {what}")
    return item


# -- listing ---------------------------------------------------------------------------------
def _summary(path: str, uidvalidity: int, item: dict, uid: int | None = None) -> dict:
    uid = item.get(b"UID", uid)  # imapclient keeps UID in the item only when fetching by sequence
    env = item.get(b"ENVELOPE")
    flags = flag_list(item.get(b"FLAGS"))
    date = env.date if env is not None and env.date else item.get(b"INTERNALDATE")
    from_ = _addresses(env.from_ if env else None)
    return {
        "id": message_id(path, uidvalidity, uid), "uid": uid,
        "date": date.isoformat() if date else None, "size": item.get(b"RFC822.SIZE"),
        "flags": flags, "unseen": "\\Seen" not in flags,
        "subject": _text(env.subject) if env else "", "from": from_[0] if from_ else None,
        "to": _addresses(env.to if env else None), "cc": _addresses(env.cc if env else None),
        "messageId": _text(env.message_id) if env else "",
        "inReplyTo": _text(env.in_reply_to) if env else "",
    }


def _page(total: int, page: int, page_size: int) -> dict:
    return {"total": total, "page": page, "pages": max(1, math.ceil(total / page_size))}


def list_mailboxes(client, params: dict, replier) -> None:
    subscribed = {name for _, _, name in client.list_sub_folders()}
    mailboxes = []
    for flags, delimiter, path in client.list_folders():
        delimiter = delimiter.decode() if isinstance(delimiter, bytes) else (delimiter or "")
        entry = {"path": path, "delimiter": delimiter,
                 "name": path.rsplit(delimiter, 1)[-1] if delimiter else path,
                 "specialUse": next((f.decode() for f in flags if f in SPECIAL_USE), None),
                 "subscribed": path in subscribed, "listed": True}
        if any(f.lower() in (b"\\noselect", b"\\nonexistent") for f in flags):
            entry.update(noSelect=True)
        else:
            try:
                status = client.folder_status(path, ["MESSAGES", "UNSEEN", "UIDVALIDITY", "UIDNEXT"])
            except Exception as exc:
                if not _refused(exc):
                    raise
                status = {}
            entry.update(messages=status.get(b"MESSAGES"), unseen=status.get(b"UNSEEN"),
                         uidValidity=status.get(b"UIDVALIDITY"), uidNext=status.get(b"UIDNEXT"))
        if path.upper() == "INBOX":
            entry["specialUse"] = entry["specialUse"] or "\\Inbox"
        mailboxes.append(entry)
    replier.reply(200, {"mailboxes": mailboxes})


def list_messages(client, params: dict, replier) -> None:
    path, page, page_size = params["path"], params["page"], params["pageSize"]
    info = select(client, path)
    total, uidvalidity = info.get(b"EXISTS", 0), info.get(b"UIDVALIDITY")
    top = total - page * page_size  # newest first: sequence numbers from the top down
    messages = []
    if top >= 1:
        client.use_uid = False  # by sequence number: a page costs one FETCH, however big the mailbox
        try:
            found = client.fetch(list(range(max(1, top - page_size + 1), top + 1)), LIST_ITEMS)
        finally:
            client.use_uid = True
        for seq in sorted(found, reverse=True):
            messages.append(_summary(path, uidvalidity, found[seq]))
    replier.reply(200, {**_page(total, page, page_size), "messages": messages})


def search_messages(client, params: dict, replier) -> None:
    path, page, page_size = params["path"], params["page"], params["pageSize"]
    info = select(client, path)
    criteria = params["criteria"]
    charset = None if all(isinstance(c, str) and c.isascii() for c in criteria) else "UTF-8"
    try:
        uids = sorted(client.search(criteria, charset=charset), reverse=True)
    except Exception as exc:
        if not _refused(exc):
            raise
        raise ApiError(400, f"the IMAP server refused the search: {exc}"[:300],
                       {"search": "refused by the server"}) from None
    chosen = uids[page * page_size:(page + 1) * page_size]
    found = client.fetch(chosen, LIST_ITEMS) if chosen else {}
    messages = [_summary(path, info.get(b"UIDVALIDITY"), found[uid], uid) for uid in chosen if uid in found]
    replier.reply(200, {**_page(len(uids), page, page_size), "messages": messages})


# -- one message -------------------------------------------------------------------------------
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
    item = _fetch_one(client, params, ["UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "BODYSTRUCTURE",
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
    item = _fetch_one(client, params, ["UID", "BODYSTRUCTURE"], what="text")
    parts = {p.section: p for p in parts_of(item[b"BODYSTRUCTURE"])}
    if not all(s in parts and parts[s].is_text for s in params["plain"] + params["html"]):
        raise ApiError(404, f"text {params['id']!r}: no such text")
    plain = [parts[s] for s in params["plain"]]
    html = [parts[s] for s in params["html"]]
    replier.reply(200, _text_body(client, params["uid"], plain, html, params["textType"]))


# -- streamed bodies ---------------------------------------------------------------------------
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
    select_message(client, params)
    item = _fetch_one(client, params, ["UID", "RFC822.SIZE"])
    size = item.get(b"RFC822.SIZE") or 0
    replier.start_stream(200, {"Content-Type": "message/rfc822", "Content-Length": str(size),
                               "Content-Disposition": _filename_header(f"{params['uid']}.eml")})
    _stream_section(client, params["uid"], "", size, replier, ChunkDecoder("binary"))


def get_attachment(client, params: dict, replier) -> None:
    select_message(client, params, what="attachment")
    item = _fetch_one(client, params, ["UID", "BODYSTRUCTURE"], what="attachment")
    part = next((p for p in parts_of(item[b"BODYSTRUCTURE"]) if p.section == params["section"]), None)
    if part is None:
        raise ApiError(404, f"attachment {params['id']!r}: no such attachment")
    content_type = _UNSAFE_TYPE.sub("", part.content_type) or "application/octet-stream"
    replier.start_stream(200, {"Content-Type": content_type,
                               "Content-Disposition": _filename_header(part.filename or "attachment")})
    _stream_section(client, params["uid"], part.section, part.encoded_size, replier,
                    ChunkDecoder(part.encoding))


# -- changes -----------------------------------------------------------------------------------
def update_flags(client, params: dict, replier) -> None:
    select_message(client, params, readonly=False)
    uid, flags = params["uid"], params["flags"]
    _fetch_one(client, params, ["UID", "FLAGS"])
    if "set" in flags:
        client.set_flags([uid], flags["set"], silent=True)
    if flags.get("add"):
        client.add_flags([uid], flags["add"], silent=True)
    if flags.get("delete"):
        client.remove_flags([uid], flags["delete"], silent=True)
    now = _fetch_one(client, params, ["UID", "FLAGS"])
    replier.reply(200, {"flags": {name: True for name in flags}, "value": flag_list(now.get(b"FLAGS"))})


def _copyuid(client, reply) -> int | None:
    """The new UID from a MOVE/COPY's COPYUID (RFC 4315), from the untagged or the tagged OK."""
    texts = list(client._imap.untagged_responses.pop("OK", []))
    texts += reply if isinstance(reply, list) else [reply]
    for text in texts:
        text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        match = re.search(r"\[COPYUID \d+ \S+ (\d+)", text)
        if match:
            return int(match.group(1))
    return None


def _move(client, params: dict, target: str) -> dict:
    uid = params["uid"]
    try:
        status = client.folder_status(target, ["UIDVALIDITY"])
    except Exception as exc:
        if not _refused(exc):
            raise
        raise ApiError(404, f"mailbox {target!r}: no such mailbox", {"path": "no such mailbox"}) from None
    client._imap.untagged_responses.pop("OK", None)
    if client.has_capability("MOVE"):
        reply = client.move([uid], target)
    else:
        reply = client.copy([uid], target)
        client.delete_messages([uid])
        if client.has_capability("UIDPLUS"):
            client.uid_expunge([uid])
        else:
            client.expunge()
    new_uid = _copyuid(client, reply)
    moved = {"path": target, "uid": new_uid}
    if new_uid is not None:
        moved["id"] = message_id(target, status[b"UIDVALIDITY"], new_uid)
    return moved


def move_message(client, params: dict, replier) -> None:
    select_message(client, params, readonly=False)
    _fetch_one(client, params, ["UID"])
    replier.reply(200, _move(client, params, params["target"]))


def _trash(client) -> str | None:
    for flags, _, path in client.list_folders():
        if b"\\Trash" in flags:
            return path
    names = {path.lower(): path for _, _, path in client.list_folders()}
    return names.get("trash")


def delete_message(client, params: dict, replier) -> None:
    select_message(client, params, readonly=False)
    _fetch_one(client, params, ["UID"])
    trash = None if params["force"] else _trash(client)
    if trash is not None and trash != params["path"]:
        moved = _move(client, params, trash)
        replier.reply(200, {"deleted": False, "moved": {"destination": trash, "message": moved.get("id")}})
        return
    client.delete_messages([params["uid"]], silent=True)
    if client.has_capability("UIDPLUS"):
        client.uid_expunge([params["uid"]])
    else:
        client.expunge()
    replier.reply(200, {"deleted": True})


OPS = {"mailboxes": list_mailboxes, "messages": list_messages, "message": get_message,
       "text": get_text, "source": get_source, "attachment": get_attachment, "flags": update_flags,
       "move": move_message, "delete": delete_message, "search": search_messages}
