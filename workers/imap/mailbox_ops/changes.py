"""Changes: flags, move, delete (to Trash, or expunged)."""

from __future__ import annotations

import re

from shared.mail.message_ids import message_id

from ..mailbox import flag_list
from .selecting import ApiError, fetch_message, fetch_one, refused


def update_flags(client, params: dict, replier) -> None:
    uid, flags = params["uid"], params["flags"]
    fetch_message(client, params, ["UID", "FLAGS"], readonly=False)
    if "set" in flags:
        client.set_flags([uid], flags["set"], silent=True)
    if flags.get("add"):
        client.add_flags([uid], flags["add"], silent=True)
    if flags.get("delete"):
        client.remove_flags([uid], flags["delete"], silent=True)
    now = fetch_one(client, params, ["UID", "FLAGS"])
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
        if not refused(exc):
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
    fetch_message(client, params, ["UID"], readonly=False)
    replier.reply(200, _move(client, params, params["target"]))


def _trash(client) -> str | None:
    for flags, _, path in client.list_folders():
        if b"\\Trash" in flags:
            return path
    names = {path.lower(): path for _, _, path in client.list_folders()}
    return names.get("trash")


def delete_message(client, params: dict, replier) -> None:
    fetch_message(client, params, ["UID"], readonly=False)
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
