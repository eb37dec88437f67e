"""The copy of a sent message in the account's Sent folder, over IMAP connections of the submit
worker's own (imapclient, the IMAP worker's connect and login: STARTTLS whenever offered,
verified certificates). The folder is the one with special-use `\\Sent`, else imapclient's usual
names ("Sent", "Sent Items", ...). A failed copy is logged, never a failed send: the message is
out, and sending it again to make a copy would double it.

A connection (and the folder it found) is kept for the account's next copies: a copy then costs
an APPEND instead of connect, STARTTLS, LOGIN, LIST and LOGOUT (with the server's login work).
At most PER_ACCOUNT connections per account at once (servers cap connections per user: Dovecot
10 by default, Gmail 15); a send whose copy finds them all busy waits for one. A kept connection
is checked with NOOP first (a stale one is replaced; APPEND itself is never tried twice, which
could file two copies) and closed after IDLE_SECONDS unused.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

from imapclient.imapclient import SENT

from shared.stores.accounts import AccountStore
from workers.imap.client import connect, login

log = logging.getLogger(__name__)
TIMEOUT = 30
PER_ACCOUNT = 4
IDLE_SECONDS = 60


@dataclass
class _Kept:
    client: object
    folder: str
    used: float


@dataclass
class _Server:
    slots: threading.BoundedSemaphore = field(default_factory=lambda: threading.BoundedSemaphore(PER_ACCOUNT))
    idle: list[_Kept] = field(default_factory=list)
    copying: int = 0  # sends copying now or waiting for a slot


def _logout(client) -> None:
    try:
        client.logout()
    except Exception:  # noqa: BLE001 - the copy is made or not; the connection goes either way
        pass


class SentCopies:
    def __init__(self):
        self._servers: dict[tuple, _Server] = defaultdict(_Server)

    def append(self, accounts: AccountStore, account: str, record: dict, raw: bytes) -> str | None:
        """Append `raw` (flagged \\Seen) to the Sent folder; returns the folder, None when there is
        none. `record`: the account's hash as read for the send."""
        settings = accounts.imap_settings(account, record)
        if settings is None:
            return None
        # A changed password or server is another login: never a connection of the old one.
        secret = hashlib.sha256((settings.password or "").encode()).hexdigest()
        server = self._servers[(settings.host, settings.port, settings.secure, settings.user, secret)]
        server.copying += 1  # before any yield: close_idle never forgets a server in use
        try:
            return self._append(server, settings, raw)
        finally:
            server.copying -= 1

    def _append(self, server: _Server, settings, raw: bytes) -> str | None:
        with server.slots:
            kept = self._take(server)
            if kept is None:
                client = connect(settings.host, settings.port, settings.secure, TIMEOUT)
                try:
                    login(client, settings.user, settings.password)
                    folder = client.find_special_folder(SENT)
                except BaseException:
                    _logout(client)
                    raise
                if folder is None:
                    _logout(client)
                    return None
                kept = _Kept(client, folder, 0.0)
            try:
                kept.client.append(kept.folder, raw, flags=[b"\\Seen"])
            except BaseException:
                _logout(kept.client)
                raise
            kept.used = time.monotonic()
            server.idle.append(kept)
            return kept.folder

    @staticmethod
    def _take(server: _Server) -> _Kept | None:
        while server.idle:
            kept = server.idle.pop()
            try:
                kept.client.noop()
                return kept
            except Exception:  # noqa: BLE001 - went stale while kept: the next one, or a new one
                _logout(kept.client)
        return None

    def close_idle(self, idle_seconds: float = IDLE_SECONDS) -> None:
        """Log out of connections unused for idle_seconds (the maintenance loop calls it)."""
        now = time.monotonic()
        for key, server in list(self._servers.items()):
            stale = [k for k in server.idle if now - k.used >= idle_seconds]
            server.idle[:] = [k for k in server.idle if now - k.used < idle_seconds]
            for kept in stale:
                _logout(kept.client)
            if not server.idle and not server.copying:
                self._servers.pop(key, None)

    def close(self) -> None:
        self.close_idle(0)

    def copy_quietly(self, accounts: AccountStore, account: str, record: dict, raw: bytes) -> None:
        try:
            folder = self.append(accounts, account, record, raw)
            if folder is None:
                log.info("account %s: no Sent folder (or no IMAP settings); no copy kept", account)
        except Exception as exc:  # noqa: BLE001 - see the module docstring
            log.warning("account %s: could not append the sent message to Sent: %s", account,
                        type(exc).__name__)
