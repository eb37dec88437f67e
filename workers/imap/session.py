"""One account's IMAP session: a greenlet that connects, logs in, syncs and waits in IDLE.

States (DESIGN section 6): init -> connecting -> syncing -> connected (IDLE), and on failure
authenticationError (credentials refused), connectError (no connection), disconnected (a live
session ended; reconnecting), unset (IMAP not configured). Failures are retried with exponential
backoff and jitter. authenticationError and connectError are announced once per distinct error,
not per retry (the last announced error is kept in Redis, so a restart does not repeat it).

A stop while the session is syncing waits for the sync to finish (so that every event it
emitted is recorded in the sync state); a stop while it waits (IDLE, backoff) is immediate.
"""

from __future__ import annotations

import imaplib
import logging
import random
import time
from dataclasses import dataclass

import gevent
import gevent.event
import redis

from shared.events import emit
from shared.keys import Keys
from shared.redis_trouble import RedisTrouble
from shared.stores.accounts import AccountStore, ImapSettings
from shared.stores.credentials import CredentialsUnreadable

from . import client as imap
from .logins import LoginGate
from .mailbox import Capabilities
from .sync import AccountSync
from .syncstate import SyncState

log = logging.getLogger(__name__)

READ_TIMEOUT = 120  # seconds any one IMAP read may take outside IDLE
NOOP_INTERVAL = 10  # seconds between NOOPs on a server without IDLE
# The Redis errors of all sessions of the process, counted and logged once per kind (a thousand
# sessions meeting one outage log it once); each session retries with its own backoff.
SESSIONS_TROUBLE = RedisTrouble("account sessions", "imap", log, loop=False)


@dataclass
class SessionSettings:
    poll_interval: float  # seconds between syncs of mailboxes other than INBOX (and the list)
    idle_renew: float  # seconds after which IDLE is re-issued (RFC 2177: under 30 minutes)
    backoff_min: float
    backoff_max: float


class Reconnect(Exception):
    """Thrown into a session to make it drop its connection and connect again."""


class Session:
    def __init__(self, account_id: str, conn: redis.Redis, keys: Keys, store: AccountStore,
                 settings: SessionSettings, on_state, logins: LoginGate):
        self.account_id = account_id
        self.logins = logins
        self.version = 0  # the account-change log's sequence number this session is up to date with
        self.imap: ImapSettings | None = None  # read at the first attempt and after each change
        self.announced: dict[str, str] | None = None  # the status hash, read once per session
        self.conn = conn
        self.keys = keys
        self.store = store
        self.settings = settings
        self.on_state = on_state  # on_state(old, new): the process's imap_connections gauge
        self.state = "init"
        self.sync_state = SyncState(conn, keys, account_id)
        self.client: imap.MeteredIMAPClient | None = None
        self.sync_errors: dict[str, str] = {}  # path -> the server's refusal (the API's syncErrors)
        self.recorded_errors: dict[str, str] | None = None  # as last written to the account
        self.inbox_selected = False
        self.recorded_error: dict | None = None  # the lastError this session wrote
        self.busy = False
        self.stopping = False
        self.reconnect_requested = False
        self.wake = gevent.event.Event()
        self.greenlet: gevent.Greenlet | None = None
        on_state(None, "init")

    # -- control (called from other greenlets) -------------------------------------------------
    def start(self) -> None:
        self.greenlet = gevent.spawn(self._run)

    def stop(self, timeout: float = 30) -> None:
        """End the session; the sync in progress, if any, finishes first."""
        self.stopping = True
        if self.greenlet is not None and not self.busy:
            self.greenlet.kill(block=False)
        self.wake.set()
        if self.greenlet is not None:
            self.greenlet.join(timeout)
            if not self.greenlet.dead:
                self.greenlet.kill(block=True, timeout=5)
        self._close()
        self._set_state(None)

    def kill(self) -> None:
        """End the session now, a sync in progress included: its lease is lost (fencing)."""
        self.stopping = True
        if self.greenlet is not None:
            self.greenlet.kill(block=True, timeout=5)
        self._close()
        self._set_state(None)

    def reconnect(self) -> None:
        """Settings changed or a reconnect was asked for: connect again now (after a running sync)."""
        self.imap = None  # read the settings again
        self.reconnect_requested = True
        self.wake.set()
        if self.greenlet is not None and not self.busy and not self.stopping:
            self.greenlet.kill(Reconnect, block=False)

    # -- the session greenlet ------------------------------------------------------------------
    def _run(self) -> None:
        failures = 0
        while not self.stopping:
            try:
                failures = self._attempt(failures)
            except Reconnect:  # thrown in wherever the greenlet waited: start over at once
                failures = 0
            finally:
                self._close()

    def _attempt(self, failures: int) -> int:
        """One connection, from connect to its end, then the backoff; returns the failure count."""
        self.reconnect_requested = False
        try:
            self._session()
            return 0
        except Reconnect:
            raise  # asked for: start over at once (_run), no backoff
        except imap.AuthFailed as exc:
            self._set_state("authenticationError")
            self._once("authError", "authenticationError", exc.response, exc.code)
        except imap.ConnectFailed as exc:
            self._set_state("connectError")
            self._once("connectError", "connectError", exc.response, exc.code)
        except CredentialsUnreadable as exc:
            self._set_state("authenticationError")
            self._once("authError", "authenticationError", str(exc), "")
        except imap.CONNECTION_LOST + imap.PROTOCOL_ERRORS as exc:
            log.info("account %s: connection ended: %s", self.account_id, imap.describe(exc))
            self._set_state("disconnected")
        except redis.RedisError as exc:
            SESSIONS_TROUBLE.failed(exc)
            self._set_state("disconnected")
        except Exception:  # a bug must not leave an account held but dead: log, back off, retry
            log.exception("account %s: unexpected error", self.account_id)
            self._set_state("disconnected")
        finally:
            self.busy = False
            self._close()
        if self.stopping:
            return failures
        failures += 1
        self._sleep(self._backoff(failures))
        return failures

    def _backoff(self, failures: int) -> float:
        base = min(self.settings.backoff_max, self.settings.backoff_min * 2 ** (failures - 1))
        return base * random.uniform(0.5, 1.0)  # jitter: a server restart is not met by a stampede

    def _sleep(self, seconds: float) -> None:
        if self.reconnect_requested or self.stopping:
            return
        self.wake.clear()
        try:
            self.wake.wait(seconds)
        except Reconnect:
            pass

    def _session(self) -> None:
        # The slot first: hundreds of sessions starting together reach Redis and the server
        # spread over time, not at once.
        self.logins.wait()
        if self.imap is None:  # retries reuse what was read: a refusing server costs Redis nothing
            self.imap = self.store.imap_settings(self.account_id)
        settings = self.imap
        if settings is None:
            self._set_state("unset")
            self.wake.clear()
            self.wake.wait()  # until the account is changed (the worker calls reconnect())
            raise Reconnect
        if self.state not in ("authenticationError", "connectError"):
            # A retry after an error keeps showing the error until it works: the state (and the
            # imap_connections gauge that alerts watch) does not flap on every attempt.
            self._set_state("connecting")
        self.client = imap.connect(settings.host, settings.port, settings.secure, READ_TIMEOUT)
        imap.login(self.client, settings.user, settings.password)
        status = self.announced = self.sync_state.status()
        if "connectError" in status:
            self.sync_state.clear_status("connectError")
            del status["connectError"]
        self.recorded_error = None
        if "authError" in status or "authenticated" not in status:
            self._guarded(self._announce_login, settings.user)
        capabilities = self.client.capabilities()
        sync = AccountSync(self.client, self.sync_state, self._announce, self._enable(capabilities),
                           self.sync_errors, self.account_id)
        initialized = "initialized" in status
        self._set_state("syncing")
        self._guarded(self._full_sync, sync, initialized)
        if not initialized:
            self._guarded(self._announce_initialized)
        self._set_state("connected")
        SESSIONS_TROUBLE.succeeded()  # a whole sync went through Redis: says so once after trouble
        if b"IDLE" in capabilities:
            self._idle_loop(sync)
        else:
            self._noop_loop(sync)

    def _enable(self, capabilities) -> Capabilities:
        """Turn on QRESYNC (or CONDSTORE alone) where offered; what the sync may then use."""
        qresync = b"QRESYNC" in capabilities
        condstore = qresync or b"CONDSTORE" in capabilities
        if condstore and b"ENABLE" in capabilities:
            enabled = self.client.enable("QRESYNC" if qresync else "CONDSTORE")
            qresync = qresync and b"QRESYNC" in {e.upper() for e in enabled}
        else:
            qresync = False  # QRESYNC works only once enabled
        return Capabilities(condstore=condstore, qresync=qresync)

    def _guarded(self, work, *args) -> None:
        """Run a sync step that emits events; a stop waits for it, then ends the session."""
        self.busy = True
        try:
            work(*args)
        finally:
            self.busy = False
        if self.stopping:
            raise gevent.GreenletExit
        if self.reconnect_requested:  # asked for while the sync ran
            raise Reconnect

    # Announcements recorded in the status hash right after the event (run through _guarded, so a
    # stop or reconnect cannot fall between the two and make the next holder announce it again).
    def _announce_login(self, user: str) -> None:
        self._announce("authenticationSuccess", {"user": user})  # first, as every event
        self.sync_state.clear_status("authError")
        self.sync_state.set_status(authenticated="1")
        self.announced.pop("authError", None)

    def _announce_initialized(self) -> None:
        self._announce("accountInitialized", {"initSync": True})
        self.sync_state.set_status(initialized="1")

    def _full_sync(self, sync: AccountSync, announce_new_mailboxes: bool = True) -> None:
        self.inbox_selected = sync.sync_all(announce_new_mailboxes)
        if self.sync_errors != self.recorded_errors:
            self.store.set_sync_errors(self.account_id, self.sync_errors)
            self.recorded_errors = dict(self.sync_errors)

    def _idle_loop(self, sync: AccountSync) -> None:
        next_poll = time.monotonic() + self.settings.poll_interval
        while True:
            if not self.inbox_selected:  # INBOX refused (listed in syncErrors): try at the next poll
                self._wait_for_poll(next_poll)
                self._guarded(self._full_sync, sync)
                next_poll = time.monotonic() + self.settings.poll_interval
                continue
            self.client.idle()
            renew_at = time.monotonic() + self.settings.idle_renew
            changed = False
            while not changed:
                timeout = min(renew_at, next_poll) - time.monotonic()
                if timeout <= 0:
                    break
                started = time.monotonic()
                responses = self.client.idle_check(timeout=timeout)
                if not responses and time.monotonic() - started < timeout - 0.05:
                    # imapclient swallows EOF in idle_check: readable with nothing to read is a
                    # closed connection (else this loop would spin on it).
                    raise imaplib.IMAP4.abort("connection closed during IDLE")
                # Anything but the server's keep-alive ("* OK Still here") means a change: sync
                # at once, no debounce (back-to-back mail is synced one IDLE round apart).
                changed = any(not (isinstance(r, tuple) and r and r[0] == b"OK") for r in responses)
            self.client.idle_done()
            if changed:
                self._guarded(self._sync_inbox, sync)
            if time.monotonic() >= next_poll:
                self._guarded(self._full_sync, sync)
                next_poll = time.monotonic() + self.settings.poll_interval

    def _noop_loop(self, sync: AccountSync) -> None:
        next_poll = time.monotonic() + self.settings.poll_interval
        while True:
            gevent.sleep(min(NOOP_INTERVAL, self.settings.poll_interval))
            self.client.noop()
            if self.inbox_selected:
                self._guarded(self._sync_inbox, sync)
            if time.monotonic() >= next_poll:
                self._guarded(self._full_sync, sync)
                next_poll = time.monotonic() + self.settings.poll_interval

    def _sync_inbox(self, sync: AccountSync) -> None:
        self.inbox_selected = sync.sync_folder(sync.inbox)

    def _wait_for_poll(self, next_poll: float) -> None:
        while time.monotonic() < next_poll:
            gevent.sleep(min(NOOP_INTERVAL, max(0.0, next_poll - time.monotonic())))
            self.client.noop()  # the connection is checked meanwhile

    # -- helpers -------------------------------------------------------------------------------
    def _close(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            try:
                client.shutdown()
            except Exception:  # noqa: BLE001 - the connection may be half gone already
                pass

    def _set_state(self, state: str | None) -> None:
        old, self.state = self.state, state
        if old == state:
            return
        self.on_state(old, state)
        if state is not None:
            try:
                self.store.set_state(self.account_id, state)
            except redis.RedisError as exc:
                SESSIONS_TROUBLE.failed(exc)

    def _once(self, field: str, event: str, response: str, code: str) -> None:
        """Announce an error unless the same one was announced last; record it on the account."""
        error = {"response": response, "serverResponseCode": code}

        def announce() -> None:
            if self.announced is None:
                self.announced = self.sync_state.status()
            if self.announced.get(field) == response and self.recorded_error == error:
                return  # a retry failing the same way: nothing new to record or announce
            self.store.set_state(self.account_id, self.state, error)
            self.recorded_error = error
            if self.announced.get(field) != response:
                self._announce(event, error)
                self.sync_state.set_status(**{field: response})
                self.announced[field] = response

        self.busy = True  # as _guarded: a stop or reconnect waits for the record
        try:
            announce()
        except redis.RedisError as exc:
            SESSIONS_TROUBLE.failed(exc)
        finally:
            self.busy = False

    def _announce(self, event: str, data: dict, path: str | None = None, special_use: str | None = None):
        emit(self.conn, self.keys, event, account=self.account_id, data=data, path=path,
             special_use=special_use)
