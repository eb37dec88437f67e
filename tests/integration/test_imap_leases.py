"""Leases under stress: a stop during a long sync, a lease lost mid-sync, Redis refusing writes.

No webhooks process runs here: the events stay in the notify queue, where the test counts them.
"""

from __future__ import annotations

import collections
import time

from support.imap import add_account, holder, wait_state
from support.servers import wait_for
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
