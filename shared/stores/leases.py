"""Which IMAP process holds which account, in Redis, at a cost that follows change, not accounts.

Each IMAP process has one lease of its own: its worker id in the sorted set `imap-leases`, scored
by its expiry (milliseconds, Redis's clock, so hosts' clocks do not matter), renewed every TTL/3.
An account is held by the process named in `account:<id>:lease`, while that process's lease
lives; the ids a process holds are also in its set `imap-held:<worker>`, and the ids nobody holds
(new, released, or of a process that died) in the set `imap-free`. Every account id is in
exactly one of those sets. So:

- renewal is one command per process, whatever it holds;
- a process below its fair share takes free accounts with one SPOP (`acquire`), never reading
  other accounts' leases;
- once a process's lease has expired, any live process moves its accounts to `imap-free` in one
  script (`reap`): the work is the dead process's accounts, once;
- the unheld count of a scrape is SCARD of `imap-free` plus the held sets of expired processes.

Every script reads TIME itself. A process that finds its own lease expired at renewal has lost
every account (another process may have them now): it stops all its sessions (fencing) and joins
again with an empty hand.
"""

from __future__ import annotations

import math

import redis

from ..keys import Keys

_NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"

# Gives every account of one process back (its set `held`): to `imap-free` (KEYS[2]), if the
# account still exists (KEYS[3], the accounts zset). ARGV[1..3]: held prefix, lease prefix, suffix.
_FREE_ALL = """
local function free_all(worker)
  local held = ARGV[1] .. worker
  for _, id in ipairs(redis.call('SMEMBERS', held)) do
    local lease = ARGV[2] .. id .. ARGV[3]
    if redis.call('GET', lease) == worker then redis.call('DEL', lease) end
    if redis.call('ZSCORE', KEYS[3], id) then redis.call('SADD', KEYS[2], id) end
  end
  redis.call('DEL', held)
end
"""

# KEYS: leases, free, accounts. ARGV: prefixes (as _FREE_ALL), worker, ttl ms, "join" | "renew".
# join: the process starts with an empty hand (first start, after it lost its lease or fenced
# its sessions); renew fails once the lease has expired.
_RENEW = _NOW + _FREE_ALL + """
local expiry = redis.call('ZSCORE', KEYS[1], ARGV[4])
if ARGV[6] == 'renew' and not (expiry and tonumber(expiry) >= now) then return 0 end
if ARGV[6] == 'join' then free_all(ARGV[4]) end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[5]), ARGV[4])
return 1
"""

# KEYS: leases, free, accounts. ARGV: prefixes (as _FREE_ALL), most to reap.
# Returns the number of live processes.
_REAP = _NOW + _FREE_ALL + """
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - 1, 'LIMIT', 0, tonumber(ARGV[4]))
for _, worker in ipairs(dead) do
  free_all(worker)
  redis.call('ZREM', KEYS[1], worker)
end
return redis.call('ZCOUNT', KEYS[1], now, '+inf')
"""

# KEYS: leases, free, accounts, held:me. ARGV: worker, count, lease prefix, lease suffix.
# Returns the ids taken, or -1 when this process's own lease has expired.
_ACQUIRE = _NOW + """
local expiry = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not expiry or tonumber(expiry) < now then return -1 end
local won = {}
for _, id in ipairs(redis.call('SPOP', KEYS[2], tonumber(ARGV[2]))) do
  if redis.call('ZSCORE', KEYS[3], id) then
    redis.call('SET', ARGV[3] .. id .. ARGV[4], ARGV[1])
    redis.call('SADD', KEYS[4], id)
    won[#won + 1] = id
  end
end
return won
"""

# KEYS: free, accounts, held:me. ARGV: worker, lease prefix, lease suffix, ids...
_RELEASE = """
for i = 4, #ARGV do
  local id = ARGV[i]
  if redis.call('SREM', KEYS[3], id) == 1 then
    local lease = ARGV[2] .. id .. ARGV[3]
    if redis.call('GET', lease) == ARGV[1] then redis.call('DEL', lease) end
    if redis.call('ZSCORE', KEYS[2], id) then redis.call('SADD', KEYS[1], id) end
  end
end
return 0
"""

# KEYS: leases. ARGV: lease prefix, lease suffix, ids... Returns 1/0 per id.
_HELD = _NOW + """
local result = {}
for i = 3, #ARGV do
  local holder = redis.call('GET', ARGV[1] .. ARGV[i] .. ARGV[2])
  local expiry = holder and redis.call('ZSCORE', KEYS[1], holder)
  result[#result + 1] = (expiry and tonumber(expiry) >= now) and 1 or 0
end
return result
"""

# KEYS: leases, free. ARGV: held prefix.
_UNHELD = _NOW + """
local count = redis.call('SCARD', KEYS[2])
for _, worker in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - 1)) do
  count = count + redis.call('SCARD', ARGV[1] .. worker)
end
return count
"""

# KEYS: free, accounts. ARGV: lease prefix, lease suffix, held prefix, ids...
# Accounts from before these sets existed: every id held by no process goes to `imap-free`.
_ADOPT = """
for i = 4, #ARGV do
  local id = ARGV[i]
  local holder = redis.call('GET', ARGV[1] .. id .. ARGV[2])
  local held = holder and redis.call('SISMEMBER', ARGV[3] .. holder, id) == 1
  if redis.call('ZSCORE', KEYS[2], id) and not held then redis.call('SADD', KEYS[1], id) end
end
return 0
"""

# KEYS: free, lease key. ARGV: id, held prefix. An account deleted: out of every set.
_FORGET = """
local holder = redis.call('GET', KEYS[2])
if holder then redis.call('SREM', ARGV[2] .. holder, ARGV[1]) end
redis.call('SREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
return 0
"""

# KEYS: accounts, leases, the account's lease. ARGV: id, list prefix, payload, list ttl (s).
# One round trip for a mailbox API request: -1 no such account, 0 no live holder, 1 pushed onto
# the live holder's list (prefix .. holder).
_PUSH_TO_HOLDER = _NOW + """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return -1 end
local holder = redis.call('GET', KEYS[3])
local expiry = holder and redis.call('ZSCORE', KEYS[2], holder)
if not (expiry and tonumber(expiry) >= now) then return 0 end
local list = ARGV[2] .. holder
redis.call('RPUSH', list, ARGV[3])
redis.call('EXPIRE', list, tonumber(ARGV[4]))
return 1
"""

BATCH = 1000  # ids per script call where many are handled at once


def fair_share(accounts: int, live_processes: int) -> int:
    return math.ceil(accounts / max(1, live_processes))


class LeaseTable:
    """The lease data model above; used by the IMAP workers (their own lease, their accounts)
    and by the account store and the scrape (who holds what, how many nobody holds)."""

    def __init__(self, conn: redis.Redis, keys: Keys):
        self.conn = conn
        self.keys = keys
        self._lease_affix = keys.account_lease("\0").split("\0")
        self._held_prefix = keys.imap_held("")
        self._prefixes = [self._held_prefix, *self._lease_affix]
        self._sets = [keys.imap_leases, keys.imap_free, keys.accounts]
        self._scripts = {name: conn.register_script(text) for name, text in (
            ("renew", _RENEW), ("reap", _REAP), ("acquire", _ACQUIRE), ("release", _RELEASE),
            ("held", _HELD), ("unheld", _UNHELD), ("adopt", _ADOPT), ("forget", _FORGET),
            ("push", _PUSH_TO_HOLDER))}

    # -- a process's own lease -------------------------------------------------------------------
    def join(self, worker: str, ttl_ms: int) -> None:
        """Start this process's lease with an empty hand: whatever it held is free again."""
        self._scripts["renew"](keys=self._sets, args=[*self._prefixes, worker, ttl_ms, "join"])

    def renew(self, worker: str, ttl_ms: int) -> bool:
        """Extend this process's lease; False if it had expired (every account is lost)."""
        return bool(self._scripts["renew"](keys=self._sets, args=[*self._prefixes, worker, ttl_ms, "renew"]))

    def leave(self, worker: str) -> None:
        """A clean exit: give every account back and end the lease."""
        self.release(worker, [m.decode() for m in self.conn.smembers(self.keys.imap_held(worker))])
        self.conn.zrem(self.keys.imap_leases, worker)

    # -- accounts ------------------------------------------------------------------------------
    def reap(self, most: int = 20) -> int:
        """Free the accounts of processes whose lease expired; returns the live processes."""
        return int(self._scripts["reap"](keys=self._sets, args=[*self._prefixes, most]))

    def acquire(self, worker: str, count: int) -> list[str] | None:
        """Take up to `count` free accounts; None if this process's lease has expired."""
        won = self._scripts["acquire"](keys=[*self._sets, self.keys.imap_held(worker)],
                                       args=[worker, count, *self._lease_affix])
        if won == -1:
            return None
        return [w.decode() for w in won]

    def release(self, worker: str, account_ids: list[str]) -> None:
        for start in range(0, len(account_ids), BATCH):
            self._scripts["release"](
                keys=[self.keys.imap_free, self.keys.accounts, self.keys.imap_held(worker)],
                args=[worker, *self._lease_affix, *account_ids[start:start + BATCH]])

    def holder(self, account_id: str) -> str | None:
        raw = self.conn.get(self.keys.account_lease(account_id))
        return raw.decode() if raw else None

    def held(self, account_ids: list[str]) -> list[bool]:
        """Whether a live IMAP process holds each account."""
        found: list[bool] = []
        for start in range(0, len(account_ids), BATCH):
            batch = account_ids[start:start + BATCH]
            found += [bool(n) for n in self._scripts["held"](keys=[self.keys.imap_leases],
                                                            args=[*self._lease_affix, *batch])]
        return found

    def push_to_holder(self, account_id: str, list_prefix: str, payload: bytes, ttl: int) -> int:
        """Push `payload` onto the list (list_prefix + worker id) of the live process holding the
        account: 1 if pushed, 0 if no live process holds it, -1 if there is no such account."""
        return int(self._scripts["push"](keys=[self.keys.accounts, self.keys.imap_leases,
                                               self.keys.account_lease(account_id)],
                                         args=[account_id, list_prefix, payload, ttl]))

    def unheld(self) -> int:
        """How many accounts no live IMAP process holds (a few commands, whatever the total)."""
        return int(self._scripts["unheld"](keys=[self.keys.imap_leases, self.keys.imap_free],
                                           args=[self._held_prefix]))

    def added(self, pipe, account_id: str) -> None:
        """Queue on `pipe` what a new account needs: it is free."""
        pipe.sadd(self.keys.imap_free, account_id)

    def forget(self, account_id: str) -> None:
        self._scripts["forget"](keys=[self.keys.imap_free, self.keys.account_lease(account_id)],
                                args=[account_id, self._held_prefix])

    def adopt_existing(self) -> None:
        """Once per Redis: accounts made before these sets existed become free (if unheld)."""
        if self.conn.exists(self.keys.imap_leases_ready):
            return
        ids = [i.decode() for i in self.conn.zrange(self.keys.accounts, 0, -1)]
        for start in range(0, len(ids), BATCH):
            self._scripts["adopt"](keys=[self.keys.imap_free, self.keys.accounts],
                                   args=[*self._lease_affix, self._held_prefix, *ids[start:start + BATCH]])
        self.conn.set(self.keys.imap_leases_ready, "1")
