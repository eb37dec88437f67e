"""What the webhooks and submit job stores share: their atomic Lua moves and the retry backoff.

  requeue:  entries whose lease ran out (their process died) go back to the front of the queue;
            also used at shutdown for jobs not finished within the grace period. Given the
            aside ring as a third key (webhooks, see webhooks/fair_claim.py), a job whose target
            has jobs waiting aside goes back to the front of that target's aside list instead,
            so that the target's order holds.
  promote:  retries whose time has come move from the ScheduledJobRegistry to the back of the
            queue (what rq's scheduler does; ours needs no scheduler lock since the move is atomic).
"""

from __future__ import annotations

import random

MAX_BACKOFF = 6 * 3600  # seconds; keeps large *_ATTEMPTS values sane

# KEYS: wip, queue[, aside ring]. ARGV: job key prefix, then either 'expired' and a time, or
# the entries to release.
REQUEUE = """
local entries
if ARGV[2] == 'expired' then
  entries = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[3], 'LIMIT', 0, 1000)
else
  entries = {unpack(ARGV, 3)}
end
local ring = KEYS[3]
local moved = 0
for _, entry in ipairs(entries) do
  if redis.call('ZREM', KEYS[1], entry) == 1 then
    local id = string.match(entry, '^(.+):[^:]+$')
    if id and redis.call('EXISTS', ARGV[1] .. id) == 1 then
      redis.call('HSET', ARGV[1] .. id, 'status', 'queued')
      local target = ring and redis.call('HGET', ARGV[1] .. id, 'mp_target')
      if target and target ~= '' and redis.call('EXISTS', ring .. ':' .. target) == 1 then
        redis.call('LPUSH', ring .. ':' .. target, id)
      else
        redis.call('LPUSH', KEYS[2], id)
      end
      moved = moved + 1
    end
  end
end
return moved
"""

# KEYS: scheduled registry, queue. ARGV: job key prefix, now.
PROMOTE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, 1000)
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[1], id)
  if redis.call('EXISTS', ARGV[1] .. id) == 1 then
    redis.call('HSET', ARGV[1] .. id, 'status', 'queued')
    redis.call('RPUSH', KEYS[2], id)
  end
end
return #due
"""


def lua_pairs(flat: list) -> dict:
    """A Lua HGETALL reply (flat list) as the dict redis-py would give."""
    return dict(zip(flat[0::2], flat[1::2], strict=True))


def backoff(base: float, failed_attempts: int) -> float:
    """Seconds before the next attempt: base doubling per failure, +-20 % jitter (spreads a burst)."""
    delay = min(MAX_BACKOFF, base * 2 ** min(failed_attempts - 1, 40))
    return delay * random.uniform(0.8, 1.2)
