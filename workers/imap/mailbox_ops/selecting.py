"""Selecting an id's mailbox on a command connection, and what the operations raise for the
caller to answer (ApiError: 404 naming the mailbox or message, 400 naming a field)."""

from __future__ import annotations

import imaplib

from imapclient import exceptions


class ApiError(Exception):
    def __init__(self, status: int, message: str, fields: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.fields = status, message, fields

    def body(self) -> dict:
        return {"message": self.message, **({"fields": self.fields} if self.fields else {})}


def refused(exc: Exception) -> bool:
    return isinstance(exc, (imaplib.IMAP4.error, exceptions.IMAPClientError)) and not isinstance(
        exc, imaplib.IMAP4.abort)


def select(client, path: str, readonly: bool = True) -> dict:
    """Select (EXAMINE when readonly) `path`; 404 naming it if the server refuses."""
    try:
        info = client.select_folder(path, readonly=readonly)
    except Exception as exc:
        if refused(exc):
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


def fetch_one(client, params: dict, items: list, what: str = "message") -> dict:
    found = client.fetch([params["uid"]], items, modifiers=None) if items else {}
    item = found.get(params["uid"])
    if item is None:
        raise ApiError(404, f"{what} {params['id']!r}: no such {what}")
    return item
