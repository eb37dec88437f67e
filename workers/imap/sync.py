"""Bring one account's mailboxes in Redis up to date with the server, announcing the differences.

A mailbox is compared with what was last synced (SyncState): a new UIDVALIDITY means its UIDs
mean something else now (mailboxReset, then a fresh baseline); UIDs unknown so far are new
mail (messageNew, with envelope data), known UIDs that are gone were deleted (messageDeleted), and
changed flags are messageUpdated. With CONDSTORE only messages changed since HIGHESTMODSEQ are
fetched; without it every message's flags are. A mailbox seen for the first time is baselined
without messageNew, so adding an account does not announce the mail already in it.

Each event is emitted before the state that records it: a crash in between announces a message
again rather than never.
"""

from __future__ import annotations

import base64
import email.header
import hashlib
import logging
from collections.abc import Callable

from imapclient import IMAPClient

from .syncstate import SyncState

log = logging.getLogger(__name__)

SPECIAL_USE = (b"\\All", b"\\Archive", b"\\Drafts", b"\\Flagged", b"\\Junk", b"\\Sent", b"\\Trash")
NOSELECT = (b"\\Noselect", b"\\NonExistent")
FETCH_BATCH = 200

Announce = Callable[..., None]  # announce(event, data, path=None, special_use=None)


def _text(value) -> str:
    if value is None:
        return ""
    raw = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    try:
        return str(email.header.make_header(email.header.decode_header(raw)))
    except (email.errors.HeaderParseError, LookupError, UnicodeError):
        return raw


def _addresses(addresses) -> list[dict]:
    result = []
    for addr in addresses or ():
        if addr.mailbox is None:  # group syntax markers
            continue
        address = _text(addr.mailbox) + ("@" + _text(addr.host) if addr.host else "")
        result.append({"name": _text(addr.name), "address": address})
    return result


def _flags(flags) -> list[str]:
    # \Recent belongs to one session (it differs between two connections): not a message change.
    names = (f.decode("utf-8", "replace") if isinstance(f, bytes) else str(f) for f in flags or ())
    return sorted(f for f in names if f != "\\Recent")


def message_id(path: str, uidvalidity: int, uid: int) -> str:
    """A stable opaque id of one message in one mailbox generation."""
    digest = hashlib.sha256(f"{path}\0{uidvalidity}\0{uid}".encode()).digest()[:12]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def new_message_data(path: str, uidvalidity: int, uid: int, item: dict) -> dict:
    env = item.get(b"ENVELOPE")
    date = env.date if env is not None and env.date else item.get(b"INTERNALDATE")
    from_ = _addresses(env.from_ if env else None)
    return {
        "id": message_id(path, uidvalidity, uid), "uid": uid, "path": path,
        "date": date.isoformat() if date else None,
        "flags": _flags(item.get(b"FLAGS")), "size": item.get(b"RFC822.SIZE"),
        "subject": _text(env.subject) if env else "",
        "from": from_[0] if from_ else None,
        "to": _addresses(env.to if env else None),
        "messageId": _text(env.message_id) if env else "",
    }


class AccountSync:
    def __init__(self, client: IMAPClient, state: SyncState, announce: Announce, condstore: bool):
        self.client = client
        self.state = state
        self.announce = announce
        self.condstore = condstore
        self.special_use: dict[str, str] = {}

    # -- mailbox list ----------------------------------------------------------------------------
    def list_mailboxes(self, announce_changes: bool) -> list[str]:
        """Selectable mailboxes now; new and deleted ones are announced (after the first sync)."""
        paths = []
        for flags, _delimiter, name in self.client.list_folders():
            if any(f in NOSELECT for f in flags):
                continue
            paths.append(name)
            use = next((f.decode() for f in flags if f in SPECIAL_USE), None)
            if use:
                self.special_use[name] = use
        known = self.state.mailboxes()
        for path in paths:
            if path not in known and announce_changes:
                self.announce("mailboxNew", {"path": path, "name": path.rsplit("/", 1)[-1]}, path=path,
                              special_use=self.special_use.get(path))
        for path in set(known) - set(paths):
            self.announce("mailboxDeleted", {"path": path}, path=path)
            self.state.forget_mailbox(path)
        return paths

    def changed_since_sync(self, path: str) -> bool:
        """A cheap STATUS look at a mailbox that is not selected: does it need a sync?"""
        if not self.condstore:
            return True  # flag changes show only in the flags themselves: STATUS cannot tell
        saved = self.state.mailbox(path)
        if saved is None:
            return True
        status = self.client.folder_status(path, ["MESSAGES", "UIDNEXT", "UIDVALIDITY", "HIGHESTMODSEQ"])
        now = (status.get(b"UIDVALIDITY"), status.get(b"UIDNEXT"), status.get(b"MESSAGES"),
               status.get(b"HIGHESTMODSEQ"))
        return now != (saved["uidvalidity"], saved["uidnext"], saved["exists"], saved["modseq"])

    # -- one mailbox -----------------------------------------------------------------------------
    def sync_mailbox(self, path: str) -> None:
        """SELECT (read-only) the mailbox and announce what changed since the last sync."""
        info = self.client.select_folder(path, readonly=True)
        meta = {"uidvalidity": info.get(b"UIDVALIDITY"), "uidnext": info.get(b"UIDNEXT"),
                "exists": info.get(b"EXISTS", 0), "modseq": info.get(b"HIGHESTMODSEQ")}
        saved = self.state.mailbox(path)
        if saved is None or saved["uidvalidity"] != meta["uidvalidity"]:
            if saved is not None:
                self.announce("mailboxReset", {"path": path, "uidValidity": str(meta["uidvalidity"])},
                              path=path, special_use=self.special_use.get(path))
            self.state.replace_all(path, self._all_flags(meta["exists"]), meta)
            return
        unchanged = (saved["uidnext"] == meta["uidnext"] and saved["exists"] == meta["exists"])
        if self.condstore and meta["modseq"] is not None and saved.get("modseq") is not None:
            if unchanged and saved["modseq"] == meta["modseq"]:
                return
            current = set(self.client.search(["ALL"])) if meta["exists"] else set()
            changed = self._flags_changed_since(saved["modseq"]) if meta["exists"] else {}
        else:
            changed = self._all_flags(meta["exists"])
            current = set(changed)
        known = self.state.known(path)
        self._announce_new(path, meta["uidvalidity"], sorted(current - set(known)))
        for uid in sorted(set(known) - current):
            self.announce("messageDeleted", {"id": message_id(path, meta["uidvalidity"], uid), "uid": uid},
                          path=path, special_use=self.special_use.get(path))
            self.state.forget(path, uid)
        for uid, flags in changed.items():
            if uid in known and known[uid] != flags:
                self._announce_flags(path, meta["uidvalidity"], uid, known[uid], flags)
                self.state.remember(path, uid, flags)
        self.state.save_mailbox(path, meta)

    def _all_flags(self, exists: int) -> dict[int, str]:
        if not exists:
            return {}
        return {uid: " ".join(_flags(item.get(b"FLAGS")))
                for uid, item in self.client.fetch_all(["FLAGS"]).items()}

    def _flags_changed_since(self, modseq: int) -> dict[int, str]:
        items = self.client.fetch_all(["FLAGS"], modifiers=[f"CHANGEDSINCE {modseq}"])
        return {uid: " ".join(_flags(item.get(b"FLAGS"))) for uid, item in items.items()}

    def _announce_new(self, path: str, uidvalidity: int, uids: list[int]) -> None:
        for start in range(0, len(uids), FETCH_BATCH):
            batch = uids[start:start + FETCH_BATCH]
            items = self.client.fetch(batch, ["UID", "ENVELOPE", "FLAGS", "RFC822.SIZE", "INTERNALDATE"])
            for uid in batch:
                item = items.get(uid)
                if item is None:  # expunged between SEARCH and FETCH
                    continue
                self.announce("messageNew", new_message_data(path, uidvalidity, uid, item), path=path,
                              special_use=self.special_use.get(path))
                self.state.remember(path, uid, " ".join(_flags(item.get(b"FLAGS"))))

    def _announce_flags(self, path: str, uidvalidity: int, uid: int, before: str, after: str) -> None:
        old, new = set(before.split()), set(after.split())
        changes = {"flags": {"added": sorted(new - old), "removed": sorted(old - new), "value": sorted(new)}}
        self.announce("messageUpdated", {"id": message_id(path, uidvalidity, uid), "uid": uid,
                                         "changes": changes},
                      path=path, special_use=self.special_use.get(path))
