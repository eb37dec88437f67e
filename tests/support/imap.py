"""Helpers for IMAP worker tests: accounts in the real store, events as the receiver got them."""

from __future__ import annotations

import redis

from shared.keys import Keys
from shared.stores.accounts import AccountStore

from .dovecot import Dovecot
from .receiver import Receiver
from .servers import wait_for

KEYS = Keys("")
SECRET = "test-secret-" + "0" * 20  # base_env's SERVICE_SECRET

# Fast timings for tests: short leases, frequent folder polls, quick reconnects.
FAST = dict(IMAP_LEASE_SECONDS="2", IMAP_POLL_INTERVAL="1", IMAP_BACKOFF_MIN="0.2", IMAP_BACKOFF_MAX="1",
            IMAP_LOGIN_RATE="200")


def store(conn: redis.Redis) -> AccountStore:
    return AccountStore(conn, KEYS, SECRET)


def add_account(conn: redis.Redis, dovecot: Dovecot, user: str, password: str | None = None,
                account_id: str | None = None) -> str:
    """A Dovecot user (made if new) and an account for it, through the store as the API makes it."""
    if user not in dovecot.users:
        dovecot.add_user(user, password or "pw-" + user)
    imap = dovecot.settings(user)
    if password is not None:
        imap["auth"]["pass"] = password
    store(conn).create({"account": account_id or user, "name": user, "imap": imap})
    return account_id or user


def state(conn: redis.Redis, account_id: str) -> str:
    return (conn.hget(KEYS.account(account_id), "state") or b"").decode()


def wait_state(conn: redis.Redis, account_id: str, wanted: str, timeout: float = 30) -> None:
    wait_for(lambda: state(conn, account_id) == wanted, timeout=timeout,
             what=f"account {account_id} to be {wanted} (is {state(conn, account_id)!r})")


def events(receiver: Receiver, event: str | None = None, account: str | None = None) -> list[dict]:
    with receiver.lock:
        payloads = [r.json for r in receiver.requests]
    return [p for p in payloads if (event is None or p["event"] == event)
            and (account is None or p["account"] == account)]


def wait_event(receiver: Receiver, event: str, account: str | None = None, timeout: float = 15,
               where=lambda payload: True) -> dict:
    def found():
        matching = [p for p in events(receiver, event, account) if where(p)]
        return matching[0] if matching else None

    return wait_for(found, timeout=timeout, what=f"{event} webhook for {account}")


def holder(conn: redis.Redis, account_id: str) -> str | None:
    raw = conn.get(KEYS.account(account_id) + ":lease")
    return raw.decode() if raw else None


def hold_elsewhere(conn: redis.Redis, account_id: str, worker: str = "imap:4242:otherhost",
                   seconds: float = 600) -> None:
    """Make `account_id` held by another (live, for `seconds`) IMAP process, as its lease table
    records it (shared/stores/leases.py)."""
    now_ms = int(conn.time()[0] * 1000)
    pipe = conn.pipeline()
    pipe.zadd(KEYS.imap_leases, {worker: now_ms + int(seconds * 1000)})
    pipe.srem(KEYS.imap_free, account_id)
    pipe.sadd(KEYS.imap_held(worker), account_id)
    pipe.set(KEYS.account_lease(account_id), worker)
    pipe.execute()


def expire_lease(conn: redis.Redis, worker: str) -> None:
    """End an IMAP process's own lease now, as if it had not renewed it in time."""
    conn.zadd(KEYS.imap_leases, {worker: 0})
