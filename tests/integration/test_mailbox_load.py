"""Mailbox API reads do not disturb IDLE: while 20 API reads run in parallel against one
account, new mail in another account held by the same IMAP process is still announced through
IDLE, and the reading account's own IDLE keeps announcing too.

The latencies are printed (bench/api.py measures them properly); what is asserted is what must
hold whatever the machine's load: every read answers 200 with the right message, every new mail
is announced once, no session reconnects, and the reads ran on command connections (the IDLE
sessions logged in once each).
"""

from __future__ import annotations

import statistics
import threading
import time

from shared.mail.message_ids import message_id
from support import mail
from support.imap import add_account, events, wait_event, wait_state
from support.servers import wait_for

READERS = 20


def _append_and_wait(dovecot, receiver, user: str, subject: str) -> float:
    with dovecot.client(user) as client:
        started = time.monotonic()
        mail.append(client, mail.multipart(subject=subject))
    wait_event(receiver, "messageNew", user, timeout=30, where=lambda p: p["data"]["subject"] == subject)
    return time.monotonic() - started


def test_idle_latency_while_20_api_reads_run(conn, dovecot, imap_env, spawn, receiver, delivering, api):
    add_account(conn, dovecot, "reader")
    add_account(conn, dovecot, "watcher")
    with dovecot.client("reader") as client:
        uid = mail.append(client, mail.multipart(subject="Read me"))
        uidvalidity = client.select_folder("INBOX")[b"UIDVALIDITY"]
    spawn("workers.imap", imap_env)  # one process holds both accounts
    for user in ("reader", "watcher"):
        wait_state(conn, user, "connected")
        wait_event(receiver, "accountInitialized", user)
    target = f"/v1/account/reader/message/{message_id('INBOX', uidvalidity, uid)}"

    quiet = [_append_and_wait(dovecot, receiver, "watcher", f"quiet {n}") for n in range(5)]

    stop, failures, reads = threading.Event(), [], []

    def read_loop():
        while not stop.is_set():
            started = time.monotonic()
            answer = api("GET", target, params={"textType": "*"})
            if answer.status_code != 200 or answer.json()["subject"] != "Read me":
                failures.append((answer.status_code, answer.text[:200]))
            reads.append(time.monotonic() - started)

    threads = [threading.Thread(target=read_loop) for _ in range(READERS)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: len(reads) >= READERS, timeout=60, what="the API reads to run")
        loaded = [_append_and_wait(dovecot, receiver, "watcher", f"loaded {n}") for n in range(5)]
        own = _append_and_wait(dovecot, receiver, "reader", "while being read")
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    print(f"APPEND -> messageNew, other account of the process: quiet p50 {statistics.median(quiet):.3f} s, "
          f"during {READERS} parallel API reads p50 {statistics.median(loaded):.3f} s; the reading "
          f"account's own: {own:.3f} s; {len(reads)} reads, p50 {statistics.median(reads) * 1000:.0f} ms")
    assert failures == []
    for user, subjects in (("watcher", 10), ("reader", 1)):
        assert len(events(receiver, "messageNew", user)) == subjects
    # Logins as Dovecot logged them: the watcher's IDLE session once (never reconnected); the
    # reader's IDLE session plus at most IMAP_API_CONNECTIONS (2) command connections. The test's
    # own APPENDs log in too: 10 as the watcher, 2 as the reader.
    log = dovecot.log()
    assert log.count("Login: user=<watcher>") == 10 + 1
    assert 2 + 1 + 1 <= log.count("Login: user=<reader>") <= 2 + 1 + 2
