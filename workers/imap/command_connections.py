"""Command connections: the IMAP connections that serve mailbox API calls, apart from IDLE.

The session's connection stays in IDLE (events keep their latency); an API call takes one of
the account's command connections, opened on demand (up to IMAP_API_CONNECTIONS per account,
further calls wait their turn) and closed once unused for IMAP_API_IDLE seconds, or once the
account is no longer held here. A connection that failed is dropped, never reused.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator

import gevent
import gevent.lock

from shared.stores.accounts import AccountStore

from . import client as imap

log = logging.getLogger(__name__)

READ_TIMEOUT = 60  # seconds any one read on a command connection may take


class NotConfigured(Exception):
    """The account has no IMAP settings (any more): the call is answered 503."""


class _AccountConnections:
    def __init__(self, limit: int):
        self.slots = gevent.lock.BoundedSemaphore(limit)
        self.idle: list[tuple[imap.MeteredIMAPClient, float]] = []  # (client, last used)


class CommandConnections:
    def __init__(self, store: AccountStore, per_account: int, idle_seconds: float,
                 is_held: Callable[[str], bool]):
        self.store = store
        self.per_account = per_account
        self.idle_seconds = idle_seconds
        self.is_held = is_held
        self.accounts: dict[str, _AccountConnections] = {}
        self.opened = 0  # connections opened so far (tests and the benchmark read it)

    @contextlib.contextmanager
    def client(self, account_id: str) -> Iterator[imap.MeteredIMAPClient]:
        """A logged-in command connection of the account, for the duration of one call.
        Raises imap.AuthFailed, imap.ConnectFailed, NotConfigured."""
        pool = self.accounts.setdefault(account_id, _AccountConnections(self.per_account))
        with pool.slots:
            client = pool.idle.pop()[0] if pool.idle else self._open(account_id)
            try:
                yield client
            except BaseException:
                _close(client)  # the connection's state is unknown after a failure
                raise
            client.fresh = False
            pool.idle.append((client, time.monotonic()))

    def _open(self, account_id: str) -> imap.MeteredIMAPClient:
        settings = self.store.imap_settings(account_id)
        if settings is None:
            raise NotConfigured(account_id)
        client = imap.connect(settings.host, settings.port, settings.secure, READ_TIMEOUT)
        try:
            imap.login(client, settings.user, settings.password)
        except BaseException:
            _close(client)
            raise
        client.selected = None  # the mailbox selected now (mailbox_ops.selecting.Selected)
        client.fresh = True  # not yet used by a call (a kept one may have been closed meanwhile)
        self.opened += 1
        return client

    def close_unused(self) -> None:
        """Close connections unused for idle_seconds, and all of accounts no longer held here."""
        now = time.monotonic()
        for account_id, pool in list(self.accounts.items()):
            held = self.is_held(account_id)
            keep = []
            for client, used in pool.idle:
                if held and now - used < self.idle_seconds:
                    keep.append((client, used))
                else:
                    _close(client, logout=True)
            pool.idle[:] = keep
            if not keep and not pool.slots.locked() and pool.slots.counter == self.per_account:
                del self.accounts[account_id]

    def run_closer(self) -> None:
        while True:
            gevent.sleep(min(5.0, self.idle_seconds / 2))
            self.close_unused()

    def close_all(self) -> None:
        for pool in self.accounts.values():
            for client, _ in pool.idle:
                _close(client, logout=True)
            pool.idle.clear()


def _close(client: imap.MeteredIMAPClient, logout: bool = False) -> None:
    try:
        if logout:
            with gevent.Timeout(5):
                client.logout()
        else:
            client.shutdown()
    except BaseException:  # noqa: BLE001 - half gone already: make sure the socket is closed
        try:
            client.shutdown()
        except Exception:  # noqa: BLE001
            pass
