"""Leases under stress: a stop during a long sync, a lease lost mid-sync, Redis refusing writes.

No webhooks process runs here: the events stay in the notify queue, where the test counts them.
"""

from __future__ import annotations

import collections
import time

from support.imap import KEYS, add_account, expire_lease, hold_elsewhere, holder, wait_state
from support.servers import wait_for
from support.tcpproxy import TcpProxy
from support.webhooks import notify_queue

BULK = 3000  # messages found by one sync: it takes seconds, several lease TTLs of 1 s


def pid_of(worker_id: str | None) -> int | None:
    return int(worker_id.split(":")[1]) if worker_id else None


def announced(conn) -> collections.Counter:
    """Subjects of the messageNew events enqueued so far, with how often each was announced."""
    return collections.Counter(job.args[0]["data"]["subject"] for job in notify_queue(conn).jobs
                               if job.args[0]["event"] == "messageNew")


def bulk_sync_under_way(conn, dovecot, account: str) -> None:
    """BULK messages delivered while the server is down, so that one sync after the reconnect
    finds them all; returns once that sync has announced some."""
    dovecot.stop()
    dovecot.deliver_many(account, [f"bulk {n}" for n in range(BULK)])
    dovecot.start()
    queue = notify_queue(conn)
    wait_for(lambda: len(announced(conn)) > 50, timeout=30, what="the bulk sync to be under way")
    assert queue.count < BULK  # the sync is still running


def test_sigterm_during_a_long_sync_keeps_the_lease_until_the_sync_ends(conn, dovecot, imap_env, spawn):
    env = dict(imap_env, IMAP_LEASE_SECONDS="1")
    add_account(conn, dovecot, "lena")
    first = spawn("workers.imap", env)
    wait_state(conn, "lena", "connected")
    second = spawn("workers.imap", env)  # holds nothing yet: the account is taken
    bulk_sync_under_way(conn, dovecot, "lena")

    assert first.stop(timeout=60) == 0  # SIGTERM: the sync finishes first, its lease kept meanwhile
    wait_for(lambda: pid_of(holder(conn, "lena")) == second.pid, timeout=20,
             what="the second process to take over")
    wait_state(conn, "lena", "connected")
    dovecot.append("lena", subject="after the takeover")
    wait_for(lambda: "after the takeover" in announced(conn), timeout=30, what="the last message")
    time.sleep(1)  # room for a duplicate to show up
    counts = announced(conn)
    assert len(counts) == BULK + 1
    assert [s for s, n in counts.items() if n > 1] == []  # each announced once, by one process


def sessions_ended(dovecot, user: str) -> int:
    """How many of the user's IMAP sessions Dovecot has seen end."""
    return sum(1 for line in dovecot.log().splitlines()
               if f"imap({user})" in line and ("Disconnected" in line or "Logged out" in line))


def test_a_lease_lost_mid_sync_stops_the_sync_at_once(conn, dovecot, imap_env, spawn):
    env = dict(imap_env, IMAP_LEASE_SECONDS="1")
    add_account(conn, dovecot, "mona")
    worker = spawn("workers.imap", env)
    wait_state(conn, "mona", "connected")
    bulk_sync_under_way(conn, dovecot, "mona")
    ended = sessions_ended(dovecot, "mona")

    # The process's lease runs out (as if it had stalled): another process may take its accounts.
    expire_lease(conn, holder(conn, "mona"))
    wait_for(lambda: sessions_ended(dovecot, "mona") > ended, timeout=20, what="the session to end")
    assert len(announced(conn)) < BULK  # killed mid-sync, not after finishing it
    assert "the lease of this process expired: stopping all 1 session(s) now" in worker.output()

    wait_for(lambda: pid_of(holder(conn, "mona")) == worker.pid, timeout=20, what="the account taken back")
    wait_for(lambda: len(announced(conn)) == BULK, timeout=30, what="the rest announced after the takeback")


def test_sessions_stop_when_redis_is_unreachable_and_resume_after(conn, dovecot, imap_env, spawn,
                                                                  redis_server):
    proxy = TcpProxy(redis_server.port)
    proxy.start()
    try:
        env = dict(imap_env, REDIS_URL=f"redis://127.0.0.1:{proxy.port}/0")
        add_account(conn, dovecot, "nick")
        worker = spawn("workers.imap", env)
        wait_state(conn, "nick", "connected")
        ended = sessions_ended(dovecot, "nick")

        proxy.cut()  # this process cannot renew its lease: it must not keep the session past the TTL
        wait_for(lambda: sessions_ended(dovecot, "nick") > ended, timeout=15,
                 what="the session to be stopped while no lease can be renewed")
        assert "no lease renewed for" in worker.output()

        proxy.restore()
        conn.hset(KEYS.account("nick"), "state", "init")  # to see the worker record `connected` again
        wait_state(conn, "nick", "connected", timeout=60)
        assert pid_of(holder(conn, "nick")) == worker.pid
        assert worker.proc.poll() is None
    finally:
        proxy.close()


def test_redis_refusing_writes_is_retried_not_fatal(conn, dovecot, imap_env, spawn):
    add_account(conn, dovecot, "olga")
    hold_elsewhere(conn, "olga", "imap:999999:elsewhere", seconds=600)  # not this process's yet
    worker = spawn("workers.imap", imap_env)
    wait_for(lambda: "imap process started" in worker.output(), what="the worker to start")
    time.sleep(1)  # it has joined (its own lease written)
    conn.config_set("maxmemory", "1")  # noeviction: every write is refused with OOM
    try:
        refused = "lease renewal: Redis unavailable, retrying with backoff (oom)"
        wait_for(lambda: refused in worker.output(), timeout=20, what="a refused renewal")
        time.sleep(2)  # several more rounds (every 0.67 s)
        assert worker.proc.poll() is None, worker.output()[-2000:]
        assert worker.output().count(refused) == 1  # logged once, not every round
        assert "workers/imap/" not in worker.output()  # no traceback from the IMAP worker
    finally:
        conn.config_set("maxmemory", "0")
    expire_lease(conn, "imap:999999:elsewhere")  # the other process is gone: this one takes over
    wait_state(conn, "olga", "connected")
    assert "lease renewal works again" in worker.output()
