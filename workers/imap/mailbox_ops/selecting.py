"""Selecting an id's mailbox on a command connection and fetching its message, and what the
operations raise for the caller to answer (ApiError: 404 naming the mailbox or message, 400
naming a field).

A command connection keeps its mailbox selected between calls (client.selected). A call on the
mailbox selected already starts with NOOP, not a new SELECT: the server reports what changed
since the connection's last command (new mail, flags, expunges; Dovecot shows none of it to a
FETCH before), so the answer is as fresh, without re-opening the mailbox (NOOP costs Dovecot a
fraction of an EXAMINE). NOOP and the FETCH are not pipelined: a server may run pipelined
commands at once (RFC 3501 5.5; Dovecot answered such a FETCH before the NOOP ended), so the
FETCH might miss what NOOP reports. Any other call selects first.
"""

from __future__ import annotations

import imaplib
from typing import NamedTuple

from imapclient import exceptions


class ApiError(Exception):
    def __init__(self, status: int, message: str, fields: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.fields = status, message, fields

    def body(self) -> dict:
        return {"message": self.message, **({"fields": self.fields} if self.fields else {})}


class Selected(NamedTuple):
    """The mailbox a command connection has selected now."""
    path: str
    readonly: bool
    uidvalidity: int | None


def refused(exc: Exception) -> bool:
    return isinstance(exc, (imaplib.IMAP4.error, exceptions.IMAPClientError)) and not isinstance(
        exc, imaplib.IMAP4.abort)


def select(client, path: str, readonly: bool = True) -> dict:
    """Select (EXAMINE when readonly) `path`; 404 naming it if the server refuses."""
    client.selected = None  # until the server said OK
    try:
        info = client.select_folder(path, readonly=readonly)
    except Exception as exc:
        if refused(exc):
            raise ApiError(404, f"mailbox {path!r}: no such mailbox") from None
        raise
    client.selected = Selected(path, readonly, info.get(b"UIDVALIDITY"))
    return info


def select_message(client, params: dict, readonly: bool = True, what: str = "message") -> None:
    """Select the message's mailbox; 404 unless it is the generation the id was made in."""
    info = select(client, params["path"], readonly)
    if info.get(b"UIDVALIDITY") != params["uidvalidity"]:
        raise ApiError(404, f"{what} {params['id']!r}: no such {what} (its mailbox was reset)")


def _selected_for(client, params: dict, readonly: bool) -> bool:
    """Whether the connection has the id's mailbox selected, in the id's generation, and
    writable if a change needs it (a read-write selection serves reads too: they PEEK)."""
    selected = client.selected
    return (selected is not None and selected.path == params["path"]
            and selected.uidvalidity == params["uidvalidity"] and (readonly or not selected.readonly))


def _sync(client) -> None:
    """NOOP: the server reports what changed since the connection's last command."""
    client.noop()
    # What it reported (EXISTS, EXPUNGE, other messages' FLAGS) is not asked for here; dropping
    # it keeps a long-selected connection from piling responses up.
    client._imap.untagged_responses.clear()


def fetch_message(client, params: dict, items: list, readonly: bool = True, what: str = "message") -> dict:
    """`items` of the id's message, its mailbox selected; 404 unless the message is there in the
    generation the id was made in."""
    if _selected_for(client, params, readonly):
        _sync(client)
    else:
        select_message(client, params, readonly, what)
    return fetch_one(client, params, items, what)


def fetch_one(client, params: dict, items: list, what: str = "message") -> dict:
    """`items` of the id's message on the mailbox selected now."""
    item = client.fetch([params["uid"]], items, modifiers=None).get(params["uid"])
    if item is None:
        raise ApiError(404, f"{what} {params['id']!r}: no such {what}")
    return item
