"""The IMAP process's work: hold a fair share of the accounts, one session greenlet per account.

Leases (shared/stores/leases.py): the process has one lease of its own, renewed every
IMAP_LEASE_SECONDS/3 by a greenlet with its own Redis connection; the accounts it holds are held
while that lease lives. Every round (and at once when the account-changes channel says so) the
balancer frees the accounts of processes whose lease expired, reads the account-change log from
where it last looked (settings changed, reconnect asked for, deleted: each reaches its session,
even if pub/sub dropped the message), gives back accounts above its fair share
(ceil(accounts / live imap processes)) and takes free ones up to it. Each step costs a few
commands plus the change itself, however many accounts there are.

Fencing: if the renewal finds the lease expired (the process stalled, or was cut off from Redis
while others were not), or no renewal succeeded for most of the TTL, every session is killed at
once, even mid-sync (another process may hold its account now), and the process joins again with
an empty hand. Logins go through a LoginGate (IMAP_LOGIN_RATE per second), so taking hundreds
of accounts at once is no login storm.
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

from shared.keys import Keys
from shared.metrics import definitions as metrics
from shared.redis_conn import connect
from shared.redis_trouble import RedisTrouble
from shared.secret import service_secret
from shared.stores.accounts import AccountStore
from shared.stores.leases import LeaseTable, fair_share

from ..loops import LoopWatch
from .api_server import ApiServer
from .command_connections import CommandConnections
from .logins import LoginGate
from .session import Session, SessionSettings

log = logging.getLogger(__name__)
PROCESS = "imap"  # the process label of mailpulse_redis_errors / mailpulse_redis_failing

REDIS_POOL_SIZE = 64  # connections shared by all sessions of the process (they wait their turn)
# Sessions are killed once this part of the TTL has passed since the last successful renewal
# began: the lease expires at the earliest at TTL, and killing takes a moment.
FENCE_AFTER = 0.8


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
        self.worker_id: str = lifecycle.worker_id
        # A bounded pool: a thousand sessions syncing at once wait for a connection, not open one each.
        self.conn = connect(config, blocking_pool=REDIS_POOL_SIZE)
        self.store = AccountStore(self.conn, self.keys, service_secret(config))
        # Leases go through connections of their own: renewals never wait behind busy sessions.
        lease_conn = connect(config)
        self.leases = LeaseTable(lease_conn, self.keys)
        self.ttl = config.IMAP_LEASE_SECONDS
        self.ttl_ms = int(self.ttl * 1000)
        self.interval = config.IMAP_LEASE_SECONDS / 3
        self.joined = False  # this process's own lease started (with an empty hand)
        self.renewed_at = time.monotonic()  # when the last successful renewal (or join) began
        self.seen_seq = 0  # the account-change log has been read up to here
        self.settings = SessionSettings(config.IMAP_POLL_INTERVAL, config.IMAP_IDLE_RENEW,
                                        config.IMAP_BACKOFF_MIN, config.IMAP_BACKOFF_MAX)
        self.logins = LoginGate(config.IMAP_LOGIN_RATE)
        self.gauge = StateGauge()
        self.sessions: dict[str, Session] = {}
        # Sessions still stopping: still held (the lease renewal covers them), not taken again yet.
        self.stopping: dict[str, Session] = {}
        self.stoppers = gevent.pool.Group()
        self.rebalance = gevent.event.Event()
        self.watch = LoopWatch(wake=self.rebalance.set)
        # Redis errors met once (not by a loop that retries): counted and logged once per kind.
        self.one_offs = RedisTrouble("account hand-over", PROCESS, log, loop=False)
        # Mailbox API calls for the accounts held here, on command connections of their own.
        connections = CommandConnections(self.store, config.IMAP_API_CONNECTIONS, config.IMAP_API_IDLE,
                                         lambda account_id: account_id in self.sessions)
        self.api = ApiServer(self.conn, connect(config), self.keys, self.worker_id, connections,
                             self._state_of, config.IMAP_API_CONCURRENCY)

    def _state_of(self, account_id: str) -> str | None:
        session = self.sessions.get(account_id)
        return session.state if session is not None else None

    # -- entry point (workers.runner calls it in its own greenlet) ---------------------------
    def run(self, stop: threading.Event) -> None:
        listener = self.watch.spawn("account changes", self._listen, stop)
        keepers = [self.watch.spawn("lease renewal", self._keep_lease),
                   self.watch.spawn("fencing", self._fence_unrenewed)]
        api = self.watch.spawn("mailbox API", self.api.run)
        trouble = RedisTrouble("balancing", PROCESS, log)
        try:
            while not stop.is_set() and self.watch.died is None:
                self.rebalance.clear()  # before the pass: a wake-up during it starts the next at once
                wait = self.interval
                try:
                    self._balance()
                    trouble.succeeded()
                except redis.RedisError as exc:  # refusals as well (MISCONF, NOPERM, OOM): keep what is held
                    wait = min(wait, trouble.failed(exc))  # back off, but notice the cure soon
                self.rebalance.wait(wait)
        finally:
            listener.kill()
            api.kill()
            self._drop(list(self.sessions), release=True)
            self.stoppers.join(timeout=30)  # the keeper renews the lease meanwhile
            gevent.killall(keepers)
            try:
                self.leases.leave(self.worker_id)
            except redis.RedisError as exc:
                self.one_offs.failed(exc)
                log.warning("leases not given back (they expire by themselves)")
        self.watch.check()  # a background loop died: exit non-zero, the supervisor restarts us

    # -- balancing -----------------------------------------------------------------------------
    def _balance(self) -> None:
        if not self.joined:
            self.leases.adopt_existing()
            began = time.monotonic()
            self.seen_seq = self.store.change_seq()  # sessions started from now on read settings anew
            self.leases.join(self.worker_id, self.ttl_ms)
            self.joined, self.renewed_at = True, began
        live = self.leases.reap()
        self._read_changes()
        share = fair_share(self.conn.zcard(self.keys.accounts), live)
        if len(self.sessions) > share:
            extra = random.sample(sorted(self.sessions), len(self.sessions) - share)
            log.info("giving back %d account(s) above the fair share of %d", len(extra), share)
            self._drop(extra, release=True)
        want = share - len(self.sessions) - len(self.stopping)
        if want > 0:
            won = self.leases.acquire(self.worker_id, want)
            if won is None:
                self._lost_lease("expired before accounts were taken")
                return
            for account_id in won:
                self._hold(account_id)

    def _read_changes(self) -> None:
        """Apply the account-change log from where it was last read (pub/sub may have lost some)."""
        for account_id, seq in self.store.changes_since(self.seen_seq):
            self.seen_seq = max(self.seen_seq, seq)
            self._changed(account_id, seq, None)

    def _changed(self, account_id: str, seq: int | None, action: str | None) -> None:
        """One account changed (action known from pub/sub, or None from the log)."""
        session = self.sessions.get(account_id)
        if session is None:
            if action == "added":
                self.rebalance.set()
            return
        if seq is not None and seq <= session.version:
            return  # already applied (pub/sub first, then the log)
        session.version = max(session.version, seq or 0)
        if action == "deleted" or (action is None and not self.store.exists(account_id)):
            self._drop([account_id], release=True)
        else:
            session.reconnect()  # settings changed or a reconnect asked for: log in again

    def _hold(self, account_id: str) -> None:
        session = Session(account_id, self.conn, self.keys, self.store, self.settings, self.gauge.change,
                          self.logins)
        session.version = self.seen_seq
        self.sessions[account_id] = session
        session.start()

    def _drop(self, account_ids: list[str], release: bool) -> None:
        """Stop sessions in the background (letting syncs in progress finish), then give back
        their accounts. They count as stopping at once, so the balancer does not take them again."""
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
                self.leases.release(self.worker_id, done)
            for account_id in done:
                if not self.store.exists(account_id):
                    # Deleted while its last sync was running: remove what that sync wrote.
                    self.store.delete(account_id)
        except redis.RedisError as exc:
            self.one_offs.failed(exc)
            log.warning("accounts not given back (they are freed once this lease expires)")

    # -- the lease: renewal and fencing ----------------------------------------------------------
    def _keep_lease(self) -> None:
        """Renew this process's lease every TTL/3 (until killed at the end)."""
        trouble = RedisTrouble("lease renewal", PROCESS, log)
        while True:
            started = time.monotonic()
            if self.joined:
                try:
                    renewed = self.leases.renew(self.worker_id, self.ttl_ms)
                except redis.RedisError as exc:
                    trouble.failed(exc)  # no longer backoff: the next renewal is due in TTL/3
                else:
                    if renewed:
                        self.renewed_at = started
                        trouble.succeeded()
                    else:
                        self._lost_lease("expired")
            gevent.sleep(max(0.0, self.interval - (time.monotonic() - started)))

    def _lost_lease(self, why: str) -> None:
        sessions = list(self.sessions.values()) + list(self.stopping.values())
        log.warning("the lease of this process %s: stopping all %d session(s) now", why, len(sessions))
        self._fence(sessions)
        self.joined = False  # the next round joins again and takes accounts anew
        self.rebalance.set()

    def _fence_unrenewed(self) -> None:
        """Kill every session once no renewal has succeeded for FENCE_AFTER of the TTL: the lease
        may be expiring, and another process may take the accounts. The balancer takes accounts
        again once Redis answers."""
        while True:
            gevent.sleep(self.ttl / 20)
            unrenewed = time.monotonic() - self.renewed_at
            if unrenewed > self.ttl * FENCE_AFTER and (self.sessions or self.stopping):
                sessions = list(self.sessions.values()) + list(self.stopping.values())
                log.warning("no lease renewed for %.1f s: stopping all %d session(s) now",
                            unrenewed, len(sessions))
                self._fence(sessions)
                self.joined = False

    def _fence(self, sessions: list[Session]) -> None:
        """Kill sessions at once, a sync in progress included (their accounts may be another's now)."""
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
        trouble = RedisTrouble("account changes channel", PROCESS, log)
        while not stop.is_set():
            pubsub = self.conn.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self.keys.account_changes)
                while not stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    trouble.succeeded()
                    if message and message["type"] == "message":
                        self._on_change(message["data"])
            except redis.RedisError as exc:  # the change log brings what was missed meanwhile
                stop.wait(trouble.failed(exc))
            finally:
                pubsub.close()

    def _on_change(self, raw: bytes) -> None:
        try:
            change = json.loads(raw)
            account_id, action, seq = change["account"], change["action"], change.get("seq")
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("ignored a malformed account change message")
            return
        try:
            self._changed(account_id, seq if isinstance(seq, int) else None, action)
        except redis.RedisError as exc:  # the log brings the change again at the next round
            self.one_offs.failed(exc)


def work(config, lifecycle, stop: threading.Event) -> None:
    ImapWorker(config, lifecycle).run(stop)
