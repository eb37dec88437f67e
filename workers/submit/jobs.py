"""rq bookkeeping of submit jobs: claim under a lease, record an attempt, hand back, promote.

The same data model and crash-safety argument as the webhooks' job store (workers/webhooks/
jobs.py): a claim moves a job from the queue into rq's StartedJobRegistry under a lease in one
Lua step, so a SIGKILL leaves every job either queued or leased, and an expired lease puts it
back at the front of the queue (at least once). The requeue and promote scripts and the backoff
are shared with the webhooks (workers/job_scripts.py), the retention is theirs. Claims here
carry a message, and an attempt's bookkeeping also updates the outbox summary in the job's meta
(shared/mail/submit_queue.py) and enqueues the attempt's events in the same transaction (a recorded
send always has its event).
"""

from __future__ import annotations

import base64
import logging
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import redis
from rq.job import Job
from rq.registry import FailedJobRegistry, FinishedJobRegistry
from rq.utils import now, utcformat

from shared import events
from shared.keys import Keys
from shared.mail.submit_queue import JOB_KEY_PREFIX, SubmitQueue
from shared.webhook_target import Target
from workers.job_scripts import PROMOTE, REQUEUE, backoff
from workers.webhooks.retention import Keep

log = logging.getLogger(__name__)

# KEYS: queue, started. ARGV: n, lease deadline, job key prefix, n execution ids.
_CLAIM = """
local ids = redis.call('LPOP', KEYS[1], ARGV[1])
local claimed = {}
if ids then
  for i, id in ipairs(ids) do
    if redis.call('EXISTS', ARGV[3] .. id) == 1 then
      redis.call('ZADD', KEYS[2], ARGV[2], id .. ':' .. ARGV[3 + i])
      redis.call('HSET', ARGV[3] .. id, 'status', 'started')
      claimed[#claimed + 1] = id
      claimed[#claimed + 1] = ARGV[3 + i]
      claimed[#claimed + 1] = redis.call('HGETALL', ARGV[3] .. id)
    end
  end
end
return claimed
"""

SENT, RETRY, FAILED = "sent", "retry", "failed"


@dataclass
class Claim:
    job: Job
    entry: str  # `<id>:<execution id>` in the started registry
    payload: dict

    @property
    def queue_id(self) -> str:
        return self.job.id

    @property
    def attempts_made(self) -> int:
        return int(self.job.meta.get("attempts", 0))

    @property
    def raw(self) -> bytes:
        return base64.b64decode(self.payload["raw"])


class SubmitJobs:
    def __init__(self, conn: redis.Redis, keys: Keys, lease: float, keep: Keep):
        self.conn = conn
        self.keys = keys
        self.lease = lease
        self.keep = keep
        self.submit = SubmitQueue(conn, keys)
        self.queue = self.submit.queue
        self.started = self.submit.started
        self.scheduled = self.submit.scheduled
        self.finished = FinishedJobRegistry(queue=self.queue)
        self.failed = FailedJobRegistry(queue=self.queue)
        self._claim = conn.register_script(_CLAIM)
        self._requeue = conn.register_script(REQUEUE)
        self._promote = conn.register_script(PROMOTE)

    def wait_for_jobs(self, timeout: int = 1) -> None:
        """Block until the queue has a job or `timeout` passes, taking nothing."""
        self.conn.blmove(self.queue.key, self.queue.key, timeout, "LEFT", "LEFT")

    def claim(self, n: int) -> list[Claim]:
        execution_ids = [uuid.uuid4().hex[:12] for _ in range(n)]
        flat = self._claim(keys=[self.queue.key, self.started.key],
                           args=[n, time.time() + self.lease, JOB_KEY_PREFIX, *execution_ids])
        claims = []
        for i in range(0, len(flat), 3):
            job_id, execution_id, raw = flat[i].decode(), flat[i + 1].decode(), flat[i + 2]
            job = Job(job_id, connection=self.conn)
            entry = f"{job_id}:{execution_id}"
            try:
                job.restore(dict(zip(raw[0::2], raw[1::2], strict=True)))
                payload = job.args[0]
            except Exception as exc:  # noqa: BLE001 - a corrupt job must not stop the worker
                log.error("submit job %s cannot be read (%s); failing it", job_id, exc)
                self.conn.zrem(self.started.key, entry)
                self.conn.zadd(self.failed.key, {job_id: time.time() + self.keep.failed})
                self.conn.hset(job.key, "status", "failed")
                continue
            claims.append(Claim(job, entry, payload))
        return claims

    def finish(self, claim: Claim, kind: str, error: str | None, max_attempts: int, backoff_base: float,
               events_for: Callable[[str], list[tuple[str, dict]]], target: Target) -> str:
        """Record one attempt (SENT, RETRY or FAILED) and its events (`events_for(new status)`),
        in one transaction: a crash or a Redis error leaves both recorded or neither (then the
        lease hands the message out again). Returns the job's new status."""
        job = claim.job
        before = dict(job.meta)
        attempts = claim.attempts_made + 1
        if kind == RETRY and attempts >= max_attempts:
            kind = FAILED
        job.meta.update(attempts=attempts, lastError=error if kind != SENT else job.meta.get("lastError"))
        job.ended_at = now()
        try:
            with self.conn.pipeline() as pipe:
                pipe.multi()  # explicit from the start: rq's enqueue (the events) calls multi() otherwise
                status = self._record(pipe, claim, kind, error, attempts, backoff_base)
                emitted = events_for(status)
                for name, data in emitted:
                    events.add_to(self.conn, pipe, self.keys, name, target, claim.payload["account"], data)
                pipe.execute()
        except BaseException:
            job.meta.clear()  # not recorded: the next try starts from the same attempt count
            job.meta.update(before)
            raise
        for name, _ in emitted:
            events.counted(name)
        return status

    def _record(self, pipe, claim: Claim, kind: str, error: str | None, attempts: int,
                backoff_base: float) -> str:
        job = claim.job
        pipe.zrem(self.started.key, claim.entry)
        if kind == SENT:
            job.meta["nextAttempt"] = None
            fields = {"status": "finished", "ended_at": utcformat(job.ended_at),
                      "meta": job.serializer.dumps(job.meta)}
            pipe.hset(job.key, mapping=fields)
            self.finished.add(job, self.keep.finished, pipe)
            pipe.expire(job.key, self.keep.finished)
            return "finished"
        if kind == RETRY:
            due = time.time() + backoff(backoff_base, attempts)
            job.meta["nextAttempt"] = due
            pipe.hset(job.key, mapping={"status": "scheduled", "meta": job.serializer.dumps(job.meta)})
            pipe.zadd(self.scheduled.key, {job.id: due})
            return "scheduled"
        job.meta["nextAttempt"] = None
        job.set_status("failed", pipe)
        self.failed.add(job, ttl=self.keep.failed, exc_string=error or "", pipeline=pipe)
        pipe.hset(job.key, mapping={"ended_at": utcformat(job.ended_at),
                                    "meta": job.serializer.dumps(job.meta)})
        return "failed"

    def renew_leases(self, claims: list[Claim]) -> None:
        deadline = time.time() + self.lease
        with self.conn.pipeline(transaction=False) as pipe:
            for claim in claims:
                pipe.zadd(self.started.key, {claim.entry: deadline}, xx=True)
            pipe.execute()

    def requeue_expired(self) -> int:
        """Jobs of dead submit processes back to the queue: nothing is lost (at least once)."""
        return self._requeue(keys=[self.started.key, self.queue.key],
                             args=[JOB_KEY_PREFIX, "expired", time.time()])

    def release(self, claims: list[Claim]) -> int:
        """Hand jobs back to the queue now (shutdown)."""
        if not claims:
            return 0
        return self._requeue(keys=[self.started.key, self.queue.key],
                             args=[JOB_KEY_PREFIX, "list", *(c.entry for c in claims)])

    def promote_due(self) -> int:
        """Scheduled sends and retries whose time has come go to the queue."""
        return self._promote(keys=[self.scheduled.key, self.queue.key], args=[JOB_KEY_PREFIX, time.time()])

    @property
    def lease_ttl(self) -> int:
        return max(1, math.ceil(self.lease))
