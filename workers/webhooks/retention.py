"""How long finished and failed webhook jobs stay in Redis, and the trimming that keeps it so.

rq leaves the registry entries of expired jobs in place until an rq worker's registry clean-up
runs, and mailpulse runs no rq worker loop; left alone, Redis only grows. So:

- a finished job (delivered or skipped) is kept WEBHOOK_KEEP_FINISHED seconds: its hash and its
  result stream expire then (TTLs set when it finishes, jobs.py), and its `rq:finished:<queue>`
  entry goes at the next trim (rq's own FinishedJobRegistry.cleanup);
- a failed job is kept WEBHOOK_KEEP_FAILED seconds the same way, and at most
  WEBHOOK_KEEP_FAILED_MAX of them: beyond that the oldest are deleted, hash and results too;
- records of rq workers that died without unregistering leave the worker sets (rq's own clean-up).

Every webhooks process trims every TRIM_INTERVAL seconds; the steps are idempotent and atomic
per job (ZPOPMIN in a script), so several processes trimming at once never double-delete.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis
from rq.executions import ExecutionRegistry
from rq.job import Job
from rq.registry import FailedJobRegistry, FinishedJobRegistry
from rq.results import Result
from rq.worker_registration import clean_worker_registry

from shared.config import SETTINGS

TRIM_INTERVAL = 5.0  # seconds between trims in one process
TRIM_BATCH = 1000  # failed jobs dropped per script call (bounds the time Redis is blocked)

# KEYS: failed registry. ARGV: most kept, batch, then the key prefixes of a job's hash, results
# and executions. Drops the entries of the lowest score (the soonest to expire: the oldest).
_DROP_OLDEST = """
local excess = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[1])
if excess <= 0 then return 0 end
local popped = redis.call('ZPOPMIN', KEYS[1], math.min(excess, tonumber(ARGV[2])))
for i = 1, #popped, 2 do
  redis.call('DEL', ARGV[3] .. popped[i], ARGV[4] .. popped[i], ARGV[5] .. popped[i])
end
return #popped / 2
"""


@dataclass(frozen=True)
class Keep:
    """Seconds a finished and a failed job are kept, and the most failed jobs kept."""

    finished: int
    failed: int
    failed_max: int

    @classmethod
    def from_config(cls, config) -> Keep:
        return cls(config.WEBHOOK_KEEP_FINISHED, config.WEBHOOK_KEEP_FAILED, config.WEBHOOK_KEEP_FAILED_MAX)

    @classmethod
    def defaults(cls) -> Keep:
        """The settings table's defaults (for a JobStore made without a configuration)."""
        table = {s.name: s for s in SETTINGS}
        return cls(*(table[name].parse(table[name].default) for name in
                     ("WEBHOOK_KEEP_FINISHED", "WEBHOOK_KEEP_FAILED", "WEBHOOK_KEEP_FAILED_MAX")))


class Retention:
    def __init__(self, conn: redis.Redis, queue, keep: Keep):
        self.conn = conn
        self.queue = queue
        self.keep = keep
        self.finished = FinishedJobRegistry(queue=queue)
        self.failed = FailedJobRegistry(queue=queue)
        self._drop_oldest = conn.register_script(_DROP_OLDEST)
        self._next_trim = 0.0

    def trim_when_due(self) -> None:
        """trim() at most every TRIM_INTERVAL seconds (called from the maintenance loop)."""
        if time.monotonic() >= self._next_trim:
            self.trim()
            self._next_trim = time.monotonic() + TRIM_INTERVAL

    def trim(self) -> int:
        """Drop what has expired and the failed jobs beyond the most kept; returns failed jobs dropped."""
        self.finished.cleanup()
        self.failed.cleanup()
        dropped = 0
        while True:
            batch = self._drop_oldest(
                keys=[self.failed.key],
                args=[self.keep.failed_max, TRIM_BATCH, Job.redis_job_namespace_prefix,
                      Result.get_key(""), ExecutionRegistry.key_template.format("")])
            dropped += batch
            if batch < TRIM_BATCH:
                break
        clean_worker_registry(self.queue)
        return dropped
