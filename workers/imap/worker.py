"""The IMAP process's work: hold a fair share of the accounts, one session greenlet per account.

Every IMAP_LEASE_SECONDS/3 seconds (and at once when the account-changes channel says so) the
balancer renews this process's leases, drops accounts whose lease was lost or that were deleted,
gives back accounts above its fair share (ceil(accounts / live imap processes), so a new process
gets its part), and takes free leases (new accounts, accounts of a dead process) up to it.
The periodic rescan is what makes it correct; pub/sub only makes it quick (it loses messages
while the subscriber is disconnected).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time

import gevent
import gevent.event
import gevent.pool
import redis

from shared import metrics
from shared.accounts import AccountStore
from shared.heartbeats import Heartbeats, is_live
from shared.keys import Keys
from shared.redis_conn import TRANSIENT_ERRORS
from shared.secret import service_secret

from .leases import Leases, fair_share
from .session import Session, SessionSettings

log = logging.getLogger(__name__)

REDIS_POOL_SIZE = 64  # connections shared by all sessions of the process (they wait their turn)


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


class ImapWorker:
    def __init__(self, config, lifecycle):
        self.config = config
        self.keys: Keys = lifecycle.keys
        # A bounded pool: a thousand sessions syncing at once wait for a connection, not open one each.
        pool = redis.BlockingConnectionPool.from_url(
            config.REDIS_URL, max_connections=REDIS_POOL_SIZE, timeout=30, socket_connect_timeout=5,
            socket_timeout=10, health_check_interval=30)
        self.conn = redis.Redis(connection_pool=pool)
        self.store = AccountStore(self.conn, self.keys, service_secret(config))
        self.heartbeats = Heartbeats(self.conn, self.keys)
        self.leases = Leases(self.conn, self.keys, lifecycle.worker_id, config.IMAP_LEASE_SECONDS)
        self.settings = SessionSettings(config.IMAP_POLL_INTERVAL, config.IMAP_IDLE_RENEW,
                                        config.IMAP_BACKOFF_MIN, config.IMAP_BACKOFF_MAX)
        self.gauge = StateGauge()
        self.sessions: dict[str, Session] = {}
        self.rebalance = gevent.event.Event()

    # -- entry point (workers.runner calls it in its own greenlet) ---------------------------
    def run(self, stop: threading.Event) -> None:
        listener = gevent.spawn(self._listen, stop)
        interval = self.config.IMAP_LEASE_SECONDS / 3
        try:
            while not stop.is_set():
                try:
                    self._balance()
                except TRANSIENT_ERRORS as exc:
                    log.warning("Redis unavailable, keeping current accounts: %s", exc)
                self.rebalance.clear()
                self.rebalance.wait(interval)
        finally:
            listener.kill()
            self._drop(list(self.sessions), release=True)

    # -- balancing -----------------------------------------------------------------------------
    def _live_imap_processes(self) -> int:
        now = time.time()
        return sum(1 for w in self.heartbeats.workers(now)
                   if w.type == "imap" and is_live(w, self.config.HEARTBEAT_INTERVAL, now))

    def _balance(self) -> None:
        held = list(self.sessions)
        lost = self.leases.renew(held)
        if lost:
            log.info("lost the lease of %d account(s)", len(lost))
            self._drop(lost, release=False)
        accounts = set(self.store.ids())
        self._drop([a for a in self.sessions if a not in accounts], release=True)
        share = fair_share(len(accounts), self._live_imap_processes())
        if len(self.sessions) > share:
            extra = random.sample(sorted(self.sessions), len(self.sessions) - share)
            log.info("giving back %d account(s) above the fair share of %d", len(extra), share)
            self._drop(extra, release=True)
        want = share - len(self.sessions)
        if want > 0:
            free = [a for a in accounts if a not in self.sessions]
            random.shuffle(free)  # processes starting together do not all race for the same ids
            holders = self.leases.holders(free)
            free = [a for a in free if holders[a] is None][:want]
            for account_id in self.leases.acquire(free):
                self._hold(account_id)

    def _hold(self, account_id: str) -> None:
        session = Session(account_id, self.conn, self.keys, self.store, self.settings, self.gauge.change)
        self.sessions[account_id] = session
        session.start()

    def _drop(self, account_ids: list[str], release: bool) -> None:
        """Stop sessions (letting syncs in progress finish), then give back their leases."""
        sessions = [self.sessions.pop(a) for a in account_ids if a in self.sessions]
        if not sessions:
            return
        pool = gevent.pool.Pool(100)
        for session in sessions:
            pool.spawn(session.stop)
        pool.join()
        if release:
            try:
                self.leases.release([s.account_id for s in sessions])
            except TRANSIENT_ERRORS as exc:
                log.warning("leases not released (they expire by themselves): %s", exc)

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
            except TRANSIENT_ERRORS as exc:
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
            gevent.spawn(self._drop, [account_id], True)
        elif action in ("updated", "reconnect") and session is not None:
            session.reconnect()
        elif action == "added":
            self.rebalance.set()


def work(config, lifecycle, stop: threading.Event) -> None:
    ImapWorker(config, lifecycle).run(stop)
