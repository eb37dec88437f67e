"""Account leases in Redis: each account is held by at most one IMAP process at a time.

A lease is the key `account:<id>:lease` holding the holder's worker id, with a TTL that the
holder renews (leases of a process that died expire, and another process takes them over). Only
the holder may renew or release (compare-and-set in Lua). The key lives under the account's
prefix, so deleting an account deletes its lease too, and the holder sees it lost at the next
renewal. `fair_share` makes processes converge on an even split: a process above its share
releases accounts, one below it acquires free ones.
"""

from __future__ import annotations

import math

import redis

from shared.keys import Keys

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
BATCH = 500


def fair_share(accounts: int, live_processes: int) -> int:
    return math.ceil(accounts / max(1, live_processes))


class Leases:
    def __init__(self, conn: redis.Redis, keys: Keys, holder: str, ttl: float):
        self.conn = conn
        self.keys = keys
        self.holder = holder
        self.ttl_ms = int(ttl * 1000)
        self._renew = conn.register_script(_RENEW)
        self._release = conn.register_script(_RELEASE)

    def key(self, account_id: str) -> str:
        return self.keys.account(account_id) + ":lease"

    def acquire(self, account_ids: list[str]) -> list[str]:
        """Try to take each free lease; returns the ids now held by this process."""
        won = []
        for start in range(0, len(account_ids), BATCH):
            batch = account_ids[start:start + BATCH]
            pipe = self.conn.pipeline(transaction=False)
            for account_id in batch:
                pipe.set(self.key(account_id), self.holder, nx=True, px=self.ttl_ms)
            won += [a for a, ok in zip(batch, pipe.execute(), strict=True) if ok]
        return won

    def renew(self, account_ids: list[str]) -> list[str]:
        """Extend held leases; returns the ids whose lease was lost (expired, taken or deleted)."""
        lost = []
        for start in range(0, len(account_ids), BATCH):
            batch = account_ids[start:start + BATCH]
            pipe = self.conn.pipeline(transaction=False)
            for account_id in batch:
                self._renew(keys=[self.key(account_id)], args=[self.holder, self.ttl_ms], client=pipe)
            lost += [a for a, ok in zip(batch, pipe.execute(), strict=True) if not ok]
        return lost

    def release(self, account_ids: list[str]) -> None:
        pipe = self.conn.pipeline(transaction=False)
        for account_id in account_ids:
            self._release(keys=[self.key(account_id)], args=[self.holder], client=pipe)
        pipe.execute()

    def holders(self, account_ids: list[str]) -> dict[str, str | None]:
        pipe = self.conn.pipeline(transaction=False)
        for account_id in account_ids:
            pipe.get(self.key(account_id))
        return {a: (h.decode() if h else None) for a, h in zip(account_ids, pipe.execute(), strict=True)}
