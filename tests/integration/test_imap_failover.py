"""Several IMAP processes: disjoint accounts, rebalancing, takeover after SIGKILL, restarts."""

from __future__ import annotations

import time

from support.imap import KEYS, add_account, events, holder, wait_event
from support.servers import wait_for

ACCOUNTS = ["u1", "u2", "u3", "u4"]


def holders(conn) -> dict[str, str | None]:
    return {a: holder(conn, a) for a in ACCOUNTS}


def pid_of(worker_id: str) -> int:
    return int(worker_id.split(":")[1])


def announced(receiver, account: str) -> list[str]:
    return sorted(e["data"]["subject"] for e in events(receiver, "messageNew", account))


def all_announced_once(receiver, expected: dict[str, list[str]]) -> None:
    def complete():
        return all(len(announced(receiver, a)) >= len(s) for a, s in expected.items())

    wait_for(complete, timeout=40, what="every message announced")
    time.sleep(1.5)  # room for a duplicate to show up
    for account, subjects in expected.items():
        assert announced(receiver, account) == sorted(subjects), account


def test_two_processes_split_accounts_and_survivor_takes_over(conn, dovecot, imap_env, spawn, receiver,
                                                              delivering):
    for account in ACCOUNTS:
        add_account(conn, dovecot, account)
    first = spawn("workers.imap", imap_env)
    wait_for(lambda: all(h and pid_of(h) == first.pid for h in holders(conn).values()),
             what="the first process to hold every account")
    for account in ACCOUNTS:
        wait_event(receiver, "accountInitialized", account)

    second = spawn("workers.imap", imap_env)  # `honcho start -c imap=2`: rebalances

    def split():
        pids = [pid_of(h) for h in holders(conn).values() if h]
        return len(pids) == 4 and pids.count(first.pid) == 2 and pids.count(second.pid) == 2

    wait_for(split, timeout=30, what="two accounts per process")
    wait_for(lambda: all(conn.hget(KEYS.account(a), "state") == b"connected" for a in ACCOUNTS),
             what="every account connected again")
    expected = {a: [f"{a} before kill"] for a in ACCOUNTS}
    for account in ACCOUNTS:
        dovecot.append(account, subject=f"{account} before kill")
    all_announced_once(receiver, expected)

    victims = [a for a, h in holders(conn).items() if pid_of(h) == second.pid]
    second.kill()
    for account in ACCOUNTS:  # mail that arrives while the dead process's accounts are unheld
        dovecot.append(account, subject=f"{account} after kill")
        expected[account].append(f"{account} after kill")
    wait_for(lambda: all(h and pid_of(h) == first.pid for h in holders(conn).values()), timeout=30,
             what="the survivor to take over the dead process's accounts")
    all_announced_once(receiver, expected)
    assert victims


def test_restart_announces_mail_that_arrived_while_down_once(conn, dovecot, imap_env, spawn, receiver,
                                                             delivering):
    add_account(conn, dovecot, "fred")
    worker = spawn("workers.imap", imap_env)
    wait_event(receiver, "accountInitialized", "fred")
    dovecot.append("fred", subject="while up")
    wait_event(receiver, "messageNew", "fred")
    assert worker.stop() == 0
    assert holder(conn, "fred") is None  # released on a clean exit
    for n in range(3):
        dovecot.append("fred", subject=f"while down {n}")
    spawn("workers.imap", imap_env)
    all_announced_once(receiver, {"fred": ["while up"] + [f"while down {n}" for n in range(3)]})
    assert len(events(receiver, "accountInitialized", "fred")) == 1


def test_deleted_account_is_dropped_and_added_one_picked_up(conn, dovecot, imap_env, spawn, receiver,
                                                            delivering):
    from support.imap import store

    add_account(conn, dovecot, "gina")
    spawn("workers.imap", imap_env)
    wait_event(receiver, "accountInitialized", "gina")
    add_account(conn, dovecot, "hank")
    wait_event(receiver, "accountInitialized", "hank")
    store(conn).delete("gina")
    wait_for(lambda: not list(conn.scan_iter(KEYS.account("gina") + "*")), timeout=10,
             what="no key of the deleted account left behind")
    dovecot.append("gina", subject="to nobody")
    dovecot.append("hank", subject="to hank")
    wait_event(receiver, "messageNew", "hank")
    assert events(receiver, "messageNew", "gina") == []
    assert not list(conn.scan_iter(KEYS.account("gina") + "*"))


def test_reconnect_request_makes_a_new_login(conn, dovecot, imap_env, spawn, receiver, delivering):
    from support.imap import store

    add_account(conn, dovecot, "otto")
    spawn("workers.imap", imap_env)
    wait_event(receiver, "accountInitialized", "otto")

    def logins() -> int:
        return dovecot.log().count("Login: user=<otto>")

    before = logins()
    assert store(conn).request_reconnect("otto")
    wait_for(lambda: logins() > before, timeout=10, what="a new login after the reconnect request")
    dovecot.append("otto", subject="after reconnect")
    wait_event(receiver, "messageNew", "otto")
    assert len(events(receiver, "authenticationSuccess", "otto")) == 1  # a reconnect is no news
