"""Bring one account's mailboxes in Redis up to date with the server, announcing the differences.

The folder list gives mailboxNew / mailboxDeleted; each mailbox is compared with what was last
synced by workers/imap/mailbox.py (new UIDs, gone UIDs, changed flags, at a cost that follows
the change), and this module says what the events carry: a new UIDVALIDITY is mailboxReset
(then a fresh baseline), new mail messageNew (envelope data), gone mail messageDeleted, changed
flags messageUpdated. The mailboxes present at the account's first sync are baselined without
messageNew, so adding an account announces none of the mail already there; mail in a mailbox
that appears later is new mail, announced.

Folders are isolated: INBOX is synced first, a folder that the server refuses (NO to EXAMINE or
STATUS: no permission, deleted between LIST and EXAMINE) is skipped, kept in `errors` (the
account's `syncErrors`), logged when its error changes, and tried again at the next poll. Only a
lost connection ends the sync.

Each event is emitted before the state that records it: a crash in between announces a message
again rather than never.
"""

from __future__ import annotations

import email.header
import imaplib
import logging
from collections.abc import Callable

from imapclient import IMAPClient

from shared.mail.message_ids import message_id  # the API's ids: a receiver fetches what it was told of

from .mailbox import Capabilities, MailboxSync, flag_list
from .syncstate import SyncState

log = logging.getLogger(__name__)

SPECIAL_USE = (b"\\All", b"\\Archive", b"\\Drafts", b"\\Flagged", b"\\Junk", b"\\Sent", b"\\Trash")
NOSELECT = (b"\\Noselect", b"\\NonExistent")

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


def new_message_data(path: str, uidvalidity: int, uid: int, item: dict) -> dict:
    env = item.get(b"ENVELOPE")
    date = env.date if env is not None and env.date else item.get(b"INTERNALDATE")
    from_ = _addresses(env.from_ if env else None)
    return {
        "id": message_id(path, uidvalidity, uid), "uid": uid, "path": path,
        "date": date.isoformat() if date else None,
        "flags": flag_list(item.get(b"FLAGS")), "size": item.get(b"RFC822.SIZE"),
        "subject": _text(env.subject) if env else "",
        "from": from_[0] if from_ else None,
        "to": _addresses(env.to if env else None),
        "messageId": _text(env.message_id) if env else "",
    }


class Announcer:
    """The events of one account's mailbox changes (mailbox.Report), with their paths' special use."""

    def __init__(self, announce: Announce):
        self.announce = announce
        self.special_use: dict[str, str] = {}

    def _emit(self, event: str, data: dict, path: str) -> None:
        self.announce(event, data, path=path, special_use=self.special_use.get(path))

    def reset(self, path: str, uidvalidity: int) -> None:
        self._emit("mailboxReset", {"path": path, "uidValidity": str(uidvalidity)}, path)

    def new(self, path: str, uidvalidity: int, uid: int, item: dict) -> None:
        self._emit("messageNew", new_message_data(path, uidvalidity, uid, item), path)

    def deleted(self, path: str, uidvalidity: int, uid: int) -> None:
        self._emit("messageDeleted", {"id": message_id(path, uidvalidity, uid), "uid": uid}, path)

    def updated(self, path: str, uidvalidity: int, uid: int, before: str, after: str) -> None:
        old, new = set(before.split()), set(after.split())
        changes = {"flags": {"added": sorted(new - old), "removed": sorted(old - new), "value": sorted(new)}}
        data = {"id": message_id(path, uidvalidity, uid), "uid": uid, "changes": changes}
        self._emit("messageUpdated", data, path)


def refused(exc: Exception) -> bool:
    """The server answered NO/BAD to a command about one folder (the connection is fine)."""
    return isinstance(exc, imaplib.IMAP4.error) and not isinstance(exc, imaplib.IMAP4.abort)


class AccountSync:
    def __init__(self, client: IMAPClient, state: SyncState, announce: Announce, caps: Capabilities,
                 errors: dict[str, str], account_id: str = ""):
        self.client = client
        self.state = state
        self.caps = caps
        self.announcer = Announcer(announce)
        self.mailbox = MailboxSync(client, state, self.announcer, caps)
        self.errors = errors  # path -> the server's refusal, kept by the session across reconnects
        self.account_id = account_id
        self.paths: list[str] = []
        self.inbox = "INBOX"  # as the server names it

    # -- mailbox list ----------------------------------------------------------------------------
    def list_mailboxes(self, announce_changes: bool) -> list[str]:
        """Selectable mailboxes now; new and deleted ones are announced (after the first sync).
        A new one is recorded as empty, so that the mail in it is announced as new."""
        paths = []
        delimiters = {}
        for flags, delimiter, name in self.client.list_folders():
            if any(f in NOSELECT for f in flags):
                continue
            paths.append(name)
            delimiters[name] = delimiter.decode() if isinstance(delimiter, bytes) else (delimiter or "")
            use = next((f.decode() for f in flags if f in SPECIAL_USE), None)
            if use:
                self.announcer.special_use[name] = use
        known = self.state.mailboxes()
        for path in paths:
            if path not in known and announce_changes:
                name = path.rsplit(delimiters[path], 1)[-1] if delimiters[path] else path
                self.announcer._emit("mailboxNew", {"path": path, "name": name}, path)
                self.state.save_mailbox(path, {"uidvalidity": None, "uidnext": 1, "exists": 0, "modseq": None,
                                               "indexed": True})
        for path in set(known) - set(paths):
            self.announcer._emit("mailboxDeleted", {"path": path}, path)
            self.state.forget_mailbox(path)
        for path in set(self.errors) - set(paths):
            self._cleared(path)
        self.paths = paths
        return paths

    def changed_since_sync(self, path: str) -> bool:
        """A cheap STATUS look at a mailbox that is not selected: does it need a sync?"""
        if not self.caps.condstore:
            return True  # flag changes show only in the flags themselves: STATUS cannot tell
        saved = self.state.mailbox(path)
        if saved is None or saved.get("partial") or saved.get("uidvalidity") is None:
            return True
        status = self.client.folder_status(path, ["MESSAGES", "UIDNEXT", "UIDVALIDITY", "HIGHESTMODSEQ"])
        now = (status.get(b"UIDVALIDITY"), status.get(b"UIDNEXT"), status.get(b"MESSAGES"),
               status.get(b"HIGHESTMODSEQ"))
        return now != (saved["uidvalidity"], saved["uidnext"], saved["exists"], saved["modseq"])

    # -- syncing -----------------------------------------------------------------------------------
    def sync_all(self, announce_new_mailboxes: bool = True) -> bool:
        """The folder list, INBOX first, then every other folder that changed, each on its own; at
        the end INBOX is selected again (for IDLE). Returns whether INBOX is selected."""
        paths = self.list_mailboxes(announce_new_mailboxes)
        inbox = self.inbox = next((p for p in paths if p.upper() == "INBOX"), "INBOX")
        self.sync_folder(inbox, full=True)
        others = [p for p in paths if p != inbox]
        for path in others:
            self._isolated(path, lambda p=path: self.changed_since_sync(p) and self.mailbox.sync(p, True))
        if not others:
            return inbox not in self.errors
        return self.sync_folder(inbox)

    def sync_folder(self, path: str, full: bool = False) -> bool:
        """Sync one folder (isolated); True if it worked (it is selected now)."""
        return self._isolated(path, lambda: self.mailbox.sync(path, full=full))

    def _isolated(self, path: str, work) -> bool:
        try:
            work()
        except Exception as exc:
            if not refused(exc):
                raise  # the connection (or Redis) failed: the session handles that
            self._failed(path, f"{exc}"[:300])
            return False
        self._cleared(path)
        return True

    def _failed(self, path: str, message: str) -> None:
        if self.errors.get(path) != message:
            log.warning("account %s: folder %r skipped until the next poll: %s",
                        self.account_id, path, message)
        self.errors[path] = message

    def _cleared(self, path: str) -> None:
        if self.errors.pop(path, None) is not None:
            log.info("account %s: folder %r syncs again", self.account_id, path)
