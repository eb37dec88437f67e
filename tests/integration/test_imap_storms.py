"""No storms, no lost changes: logins spread over the configured rate after a restart, a settings
change that pub/sub never delivered still reaches its session, and accounts added together all
start at once (no wake-up lost during a balancing pass)."""

from __future__ import annotations

import re
import time

from shared.stores.accounts import AccountStore
from support.dovecot import Dovecot
from support.imap import KEYS, SECRET, add_account, events, store, wait_event, wait_state
from support.servers import wait_for

ACCOUNTS = 500
LOGIN_RATE = 50  # per second: 500 logins take at least 10 s


def login_times(server: Dovecot, since: float) -> list[int]:
    """Unix times (seconds) of the successful logins Dovecot logged from the second of `since` on.

    Dovecot logs whole seconds: a login in the same second as `since`, but after it, is logged with
    that second, so the comparison is with the second itself (a process can start within one)."""
    times = [int(m.group(1)) for m in re.finditer(r"^(\d+) imap-login: Info: Login: ", server.log(), re.M)]
    return [t for t in times if t >= int(since)]


def test_500_accounts_after_a_restart_log_in_at_the_configured_rate(conn, imap_env, spawn, receiver,
                                                                     delivering):
    server = Dovecot(extra_config='log_timestamp = "%s "')
    server.start()
    try:
        accounts = AccountStore(conn, KEYS, SECRET)
        server.add_users({f"u{n}": f"pw-{n}" for n in range(ACCOUNTS)})
        for n in range(ACCOUNTS):
            accounts.create({"account": f"u{n}", "name": f"u{n}", "imap": server.settings(f"u{n}")})
        env = dict(imap_env, IMAP_LOGIN_RATE=str(LOGIN_RATE), IMAP_LEASE_SECONDS="10")
        first = spawn("workers.imap", env)
        wait_for(lambda: accounts.count_by_state()["connected"] == ACCOUNTS, timeout=120, interval=0.5,
                 what="every account connected")
        assert first.stop(timeout=60) == 0

        restarted = time.time()
        spawn("workers.imap", env)
        wait_for(lambda: len(login_times(server, restarted)) >= ACCOUNTS, timeout=120, interval=0.5,
                 what="every account logged in again")
        times = login_times(server, restarted)
        # At most LOGIN_RATE a second: the 500 logins span (500 - 1) / 50 s, less the second's rounding.
        assert max(times) - min(times) >= (ACCOUNTS - 1) // LOGIN_RATE - 1
        per_second = max(times.count(t) for t in set(times))
        assert per_second <= LOGIN_RATE * 1.5  # jittered slots: never a burst of many at once
        wait_for(lambda: accounts.count_by_state()["connected"] == ACCOUNTS, timeout=60, interval=0.5,
                 what="every account connected again")
        assert events(receiver, "authenticationError") == []
    finally:
        server.close()


class SilentStore:
    """The account store with its pub/sub message lost, as when a subscriber is reconnecting."""

    def __init__(self, conn):
        self.store = store(conn)
        self.store._publish = lambda *args: None

    def __getattr__(self, name):
        return getattr(self.store, name)


def test_a_settings_change_whose_message_was_lost_still_reaches_the_session(conn, dovecot, imap_env,
                                                                           spawn, receiver, delivering):
    dovecot.add_user("uwe", "right")
    add_account(conn, dovecot, "uwe", password="wrong")
    spawn("workers.imap", dict(imap_env, IMAP_BACKOFF_MIN="30", IMAP_BACKOFF_MAX="60"))  # no retry soon
    wait_event(receiver, "authenticationError", "uwe")
    SilentStore(conn).update("uwe", {"imap": {"auth": {"pass": "right"}}})  # no pub/sub message
    wait_event(receiver, "authenticationSuccess", "uwe", timeout=10)  # the change log brought it
    wait_state(conn, "uwe", "connected")


def test_accounts_added_together_start_at_once(conn, dovecot, imap_env, spawn, receiver, delivering):
    # Balancing rounds every 10 s here: an account must not wait for the next one.
    spawn("workers.imap", dict(imap_env, IMAP_LEASE_SECONDS="30"))
    time.sleep(2)  # the process is up and has balanced once
    for n in range(3):
        dovecot.add_user(f"vera{n}", f"pw-{n}")
    added = time.monotonic()
    for n in range(3):
        add_account(conn, dovecot, f"vera{n}")
    for n in range(3):
        left = max(1.0, 8 - (time.monotonic() - added))  # well before the next round (10 s)
        wait_event(receiver, "accountInitialized", f"vera{n}", timeout=left)
