"""Listing operations: mailboxes, a page of messages (newest first), a search's page."""

from __future__ import annotations

import math

from shared.mail.message_ids import message_id

from ..mailbox import flag_list
from ..sync import SPECIAL_USE, _addresses, _text
from .selecting import ApiError, refused, select

LIST_ITEMS = ["UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"]


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
                if not refused(exc):
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
        if not refused(exc):
            raise
        raise ApiError(400, f"the IMAP server refused the search: {exc}"[:300],
                       {"search": "refused by the server"}) from None
    chosen = uids[page * page_size:(page + 1) * page_size]
    found = client.fetch(chosen, LIST_ITEMS) if chosen else {}
    messages = [_summary(path, info.get(b"UIDVALIDITY"), found[uid], uid) for uid in chosen if uid in found]
    replier.reply(200, {**_page(len(uids), page, page_size), "messages": messages})
