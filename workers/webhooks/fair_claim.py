"""The webhooks claim: one target (scheme://host:port) never holds up the others' jobs.

A webhooks process holds at most WEBHOOK_TARGET_CONCURRENCY jobs of one target at a time. A job
of a target it already holds that many of is not claimed: the claim moves it aside, to the end
of that target's aside list (`<ring>:<target>`), and goes on down the queue. The lists are shared
by every webhooks process: a process with room for the target takes its aside jobs before newer
ones of the same target from the queue, so a target's order holds (best effort, as before).

Everything happens in one Lua script, so a job is always in exactly one place (queue, aside list,
wip registry): a SIGKILL at any moment loses nothing and hands out nothing twice. The ring (a list
of the targets whose aside list is not empty) is rotated by each claim, so that with many
saturated targets each gets its turn; a target is in the ring exactly while its list is not empty.

Cost: a job set aside is moved once more; a claim looks at no more than SCAN_LIMIT queue entries
and RING_LIMIT aside targets, so its time in Redis stays bounded whatever the backlog.
"""

from __future__ import annotations

from dataclasses import dataclass

SCAN_LIMIT = 1000  # queue entries one claim looks at (claimed or set aside)
RING_LIMIT = 64  # aside targets one claim looks at

# KEYS: queue, wip, settings, aside ring. ARGV: n, lease deadline, job key prefix, per-target cap,
# scan limit, ring limit, k, then k pairs (target, jobs this process holds of it), then n
# execution ids. Returns {{id1, job hash 1, id2, ...}, settings hash, targets aside, more}.
SCRIPT = """
local n, deadline, prefix = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local cap, scan_limit, ring_limit = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local ring = KEYS[4]
local k = tonumber(ARGV[7])
local held = {}
for i = 0, k - 1 do held[ARGV[8 + 2 * i]] = tonumber(ARGV[9 + 2 * i]) end
local first_execution = 8 + 2 * k
local claimed, taken = {}, 0

local function room(target)
  if target == '' then return n end  -- nobody, or a job from before targets were stored
  return cap - (held[target] or 0)
end
local function take(id, target)
  redis.call('ZADD', KEYS[2], deadline, id .. ':' .. ARGV[first_execution + taken])
  taken = taken + 1
  claimed[#claimed + 1] = id
  claimed[#claimed + 1] = redis.call('HGETALL', prefix .. id)
  held[target] = (held[target] or 0) + 1
end

-- 1. Jobs waiting aside, target by target in turn, where this process has room for them.
for _ = 1, math.min(redis.call('LLEN', ring), ring_limit) do
  if taken >= n then break end
  local target = redis.call('LMOVE', ring, ring, 'LEFT', 'RIGHT')
  local space = math.min(room(target), n - taken)
  if space > 0 then
    local ids = redis.call('LPOP', ring .. ':' .. target, space)
    if ids then
      for _, id in ipairs(ids) do take(id, target) end
    end
  end
  if redis.call('EXISTS', ring .. ':' .. target) == 0 then redis.call('LREM', ring, 1, target) end
end

-- 2. The queue: claim, or set aside what this process has no room for (or whose target
--    already has older jobs aside: those go first).
local scanned = 0
while taken < n and scanned < scan_limit do
  local id = redis.call('LPOP', KEYS[1])
  if not id then break end
  scanned = scanned + 1
  local target = redis.call('HGET', prefix .. id, 'mp_target') or ''
  local aside = ring .. ':' .. target
  if target ~= '' and (room(target) <= 0 or redis.call('EXISTS', aside) == 1) then
    if redis.call('RPUSH', aside, id) == 1 then redis.call('RPUSH', ring, target) end
  else
    take(id, target)
  end
end
local targets_aside = redis.call('LLEN', ring)
local more = 0  -- stopped at a limit, not for want of claimable jobs
if scanned >= scan_limit or targets_aside > ring_limit then more = 1 end
return {claimed, redis.call('HGETALL', KEYS[3]), targets_aside, more}
"""


@dataclass
class ClaimReply:
    """What one claim call says besides the jobs: whether to look again before waiting."""

    targets_aside: int  # targets with jobs waiting aside (a slot freeing may let us take some)
    more: bool  # the claim stopped at SCAN_LIMIT or RING_LIMIT: more may be claimable now


def held_args(held: dict[str, int]) -> list:
    """The k, (target, count)... part of the script's ARGV."""
    pairs = [(target, count) for target, count in held.items() if target and count > 0]
    return [len(pairs), *(x for pair in pairs for x in pair)]
