"""The IMAP process's work: hold a fair share of the accounts, one session greenlet per account.

Every IMAP_LEASE_SECONDS/3 seconds (and at once when the account-changes channel says so) the
balancer drops accounts that were deleted, gives back accounts above its fair share
(ceil(accounts / live imap processes), so a new process gets its part), and takes free leases
(new accounts, accounts of a dead process) up to it. The periodic rescan is what makes it
correct; pub/sub only makes it quick (it loses messages while the subscriber is disconnected).

Leases are kept by greenlets of their own. One renews the leases of held *and stopping* sessions
until the last one has stopped (during shutdown too). Sessions whose lease was lost, and all of
them once no renewal has succeeded for most of the TTL, are killed at once, even mid-sync
(fencing: another process may hold the account now).
"""

from __future__ import annotations

import json
import logging
import random
import resource
import threading
import time

import gevent
import gevent.event
import gevent.pool
import redis

from shared.heartbeats import Heartbeats, is_live
from shared.keys import Keys
from shared.metrics import definitions as metrics
from shared.redis_conn import connect
from shared.secret import service_secret
from shared.stores.accounts import AccountStore

from .leases import Leases, fair_share
from .session import Session, SessionSettings

log = logging.getLogger(__name__)

REDIS_POOL_SIZE = 64  # connections shared by all sessions of the process (they wait their turn)
# Sessions are killed once this part of the TTL has passed since the last successful renewal
# began: the lease expires at the earliest at TTL, and killing takes a moment.
FENCE_AFTER = 0.8


class RedisErrorLog:
    """A recurring Redis error logged once per distinct error (not a traceback every round)."""

    def __init__(self, what: str):
        self.what = what
        self.last: str | None = None

    def failed(self, exc: redis.RedisError) -> None:
        text = f"{type(exc).__name__}: {exc}"
        if text != self.last:
            log.warning("%s failed, retrying: %s", self.what, text)
            self.last = text

    def succeeded(self) -> None:
        if self.last is not None:
            log.info("%s works again", self.what)
            self.last = None


class StateGauge:
    """This process's accounts per state, as the livesum gauge imap_connections (every state shown)."""

    def __init__(self):
        self.counts = dict.fromkeys(metrics.IMAP_STATES, 0)
        for state in metrics.IMAP_STATES:
            metrics.safely(metrics.imap_connections.labels(status=state).set, 0)

    def change(self, old: str | None, new: str | None) -> None:
        for state, delta in ((old, -1), (new, 1)):
            if state in self.counts:
                self.counts[state] += delta
                metrics.safely(metrics.imap_connections.labels(status=state).set, self.counts[state])


def raise_open_files_limit() -> None:
    """One socket per account: lift the soft limit on open files to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError) as exc:
            log.warning("open files limit stays at %d: %s", soft, exc)


class ImapWorker:
    def __init__(self, config, lifecycle):
        raise_open_files_limit()
        self.config = config
        self.keys: Keys = lifecycle.keys
        # A bounded pool: a thousand sessions syncing at once wait for a connection, not open one each.
        self.conn = connect(config, blocking_pool=REDIS_POOL_SIZE)
        self.store = AccountStore(self.conn, self.keys, service_secret(config))
        self.heartbeats = Heartbeats(self.conn, self.keys)
        # Leases go through connections of their own: renewals never wait behind busy sessions.
        lease_conn = connect(config)
        self.leases = Leases(lease_conn, self.keys, lifecycle.worker_id, config.IMAP_LEASE_SECONDS)
        self.ttl = config.IMAP_LEASE_SECONDS
        self.interval = config.IMAP_LEASE_SECONDS / 3
        self.renewed_at = time.monotonic()  # when the last successful renewal began
        self.settings = SessionSettings(config.IMAP_POLL_INTERVAL, config.IMAP_IDLE_RENEW,
                                        config.IMAP_BACKOFF_MIN, config.IMAP_BACKOFF_MAX)
        self.gauge = StateGauge()
        self.sessions: dict[str, Session] = {}
        # Sessions still stopping: their leases are renewed, their accounts not taken again yet.
        self.stopping: dict[str, Session] = {}
        self.stoppers = gevent.pool.Group()
        self.rebalance = gevent.event.Event()

    # -- entry point (workers.runner calls it in its own greenlet) ---------------------------
    def run(self, stop: threading.Event) -> None:
        listener = gevent.spawn(self._listen, stop)
        keepers = [gevent.spawn(self._keep_leases), gevent.spawn(self._fence_unrenewed)]
        errors = RedisErrorLog("balancing")
        try:
            while not stop.is_set():
                try:
                    self._balance()
                    errors.succeeded()
                except redis.RedisError as exc:  # OOM, READONLY, ... as well: keep what is held
                    errors.failed(exc)
                self.rebalance.clear()
                self.rebalance.wait(self.interval)
        finally:
            listener.kill()
            self._drop(list(self.sessions), release=True)
            self.stoppers.join(timeout=30)  # the keepers renew the stopping sessions' leases meanwhile
            gevent.killall(keepers)

    # -- balancing -----------------------------------------------------------------------------
    def _live_imap_processes(self) -> int:
        now = time.time()
        return sum(1 for w in self.heartbeats.workers(now)
                   if w.type == "imap" and is_live(w, self.config.HEARTBEAT_INTERVAL, now))

    def _balance(self) -> None:
        accounts = set(self.store.ids())
        self._drop([a for a in self.sessions if a not in accounts], release=True)
        share = fair_share(len(accounts), self._live_imap_processes())
        if len(self.sessions) > share:
            extra = random.sample(sorted(self.sessions), len(self.sessions) - share)
            log.info("giving back %d account(s) above the fair share of %d", len(extra), share)
            self._drop(extra, release=True)
        want = share - len(self.sessions)
        if want > 0:
            free = [a for a in accounts if a not in self.sessions and a not in self.stopping]
            random.shuffle(free)  # processes starting together do not all race for the same ids
            holders = self.leases.holders(free)
            free = [a for a in free if holders[a] is None][:want]
            began = time.monotonic()
            won = self.leases.acquire(free)
            if won and not self.sessions and not self.stopping:
                # Every lease held is fresh: the fencing clock starts now, not at the last renewal
                # (which may still be hanging on a connection lost while Redis was away).
                self.renewed_at = max(self.renewed_at, began)
            for account_id in won:
                self._hold(account_id)

    def _hold(self, account_id: str) -> None:
        session = Session(account_id, self.conn, self.keys, self.store, self.settings, self.gauge.change)
        self.sessions[account_id] = session
        session.start()

    def _drop(self, account_ids: list[str], release: bool) -> None:
        """Stop sessions in the background (letting syncs in progress finish), then give back
        their leases. They count as stopping at once, so the balancer does not take them again
        and the keeper renews their leases until they have stopped."""
        sessions = [self.sessions.pop(a) for a in account_ids if a in self.sessions]
        if not sessions:
            return
        for session in sessions:
            self.stopping[session.account_id] = session
        self.stoppers.spawn(self._stop_sessions, sessions, release)

    def _stop_sessions(self, sessions: list[Session], release: bool) -> None:
        try:
            pool = gevent.pool.Pool(100)
            for session in sessions:
                pool.spawn(session.stop)
            pool.join()
        finally:
            for session in sessions:
                if self.stopping.get(session.account_id) is session:
                    del self.stopping[session.account_id]
        try:
            # Not an account taken again meanwhile (possible only after its session was fenced).
            done = [s.account_id for s in sessions if s.account_id not in self.sessions]
            if release and done:
                self.leases.release(done)
            for account_id in done:
                if not self.store.exists(account_id):
                    # Deleted while its last sync was running: remove what that sync wrote.
                    self.store.delete(account_id)
        except redis.RedisError as exc:
            log.warning("leases not released (they expire by themselves): %s", exc)

    # -- leases: renewal and fencing -------------------------------------------------------------
    def _keep_leases(self) -> None:
        """Renew the leases of held and stopping sessions every TTL/3 (until killed at the end)."""
        errors = RedisErrorLog("lease renewal")
        while True:
            started = time.monotonic()
            kept = {**self.stopping, **self.sessions}
            try:
                lost = self.leases.renew(list(kept))
                self.renewed_at = started
                errors.succeeded()
            except redis.RedisError as exc:
                errors.failed(exc)
            else:
                if lost:
                    log.warning("lost the lease of %d account(s): stopping their sessions now", len(lost))
                    self._fence([kept[a] for a in lost])
            gevent.sleep(max(0.0, self.interval - (time.monotonic() - started)))

    def _fence_unrenewed(self) -> None:
        """Kill every session once no renewal has succeeded for FENCE_AFTER of the TTL: their
        leases may be expiring, and another process may take the accounts. The balancer takes
        them again once Redis answers."""
        while True:
            gevent.sleep(self.ttl / 20)
            unrenewed = time.monotonic() - self.renewed_at
            if unrenewed > self.ttl * FENCE_AFTER and (self.sessions or self.stopping):
                sessions = list(self.sessions.values()) + list(self.stopping.values())
                log.warning("no lease renewed for %.1f s: stopping all %d session(s) now",
                            unrenewed, len(sessions))
                self._fence(sessions)

    def _fence(self, sessions: list[Session]) -> None:
        """Kill sessions at once, a sync in progress included (their leases are gone or going)."""
        for session in sessions:
            for table in (self.sessions, self.stopping):
                if table.get(session.account_id) is session:
                    del table[session.account_id]
        pool = gevent.pool.Pool(100)
        for session in sessions:
            pool.spawn(session.kill)
        pool.join()

    # -- account changes -----------------------------------------------------------------------
    def _listen(self, stop: threading.Event) -> None:
        while not stop.is_set():
            pubsub = self.conn.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self.keys.account_changes)
                while not stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message and message["type"] == "message":
                        self._on_change(message["data"])
            except redis.RedisError as exc:
                log.warning("account changes channel lost, resubscribing: %s", exc)
                gevent.sleep(1)
            finally:
                pubsub.close()

    def _on_change(self, raw: bytes) -> None:
        try:
            change = json.loads(raw)
            account_id, action = change["account"], change["action"]
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed account change message")
            return
        session = self.sessions.get(account_id)
        if action == "deleted" and session is not None:
            self._drop([account_id], release=True)
        elif action in ("updated", "reconnect") and session is not None:
            session.reconnect()
        elif action == "added":
            self.rebalance.set()


def work(config, lifecycle, stop: threading.Event) -> None:
    ImapWorker(config, lifecycle).run(stop)
