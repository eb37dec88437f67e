"""rq bookkeeping of webhook jobs, many at a time, the way rq-dashboard reads it.

Built on rq's public Job/Queue/registry/Execution API plus small Lua scripts that make the moves
that must not be split by a crash atomic:

  claim:    take up to n job ids from the queue (or from the aside lists, fair_claim.py) and enter
            each in the StartedJobRegistry (`rq:wip:<queue>`) under a lease in one step, so a
            SIGKILL can never leave a job in neither place (rq's own worker uses an intermediate
            list plus a one-minute clean-up for this window).
  requeue, promote: expired leases and due retries back to the queue (../job_scripts.py).

States as rq-dashboard shows them: queued (the list; jobs waiting aside are queued too, in their
target's aside list), started (wip, leased), scheduled (waiting for a retry), finished, failed
(after the last attempt, with the error as exc_info).
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import redis
from rq import Queue
from rq.executions import Execution
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, FinishedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from rq.results import Result
from rq.utils import now, utcformat

from shared import webhook_target
from shared.keys import Keys
from shared.stores import settings as settings_module
from shared.stores import webhook_stats

from ..job_scripts import PROMOTE, REQUEUE, backoff, lua_pairs
from . import fair_claim
from .delivery import DELIVERED, RETRY, SKIPPED, Attempt, Outcome
from .retention import Keep

log = logging.getLogger(__name__)
JOB_KEY_PREFIX = Job.redis_job_namespace_prefix

@dataclass
class Claim:
    """One job this process holds: its rq Job, its Execution (the wip entry) and the attempt."""

    job: Job
    execution: Execution
    attempt: Attempt
    account: str | None
    account_url: str | None = None  # legacy jobs only: the account record's `webhooks` field
    stored_url: str | None = None  # the URL fixed at emit ("" = nobody); None on jobs from before
    target: str = ""  # scheme://host:port, what the per-target cap counts
    done: bool = field(default=False)


class JobStore:
    def __init__(self, conn: redis.Redis, keys: Keys, worker_name: str, lease: float,
                 keep: Keep | None = None):
        self.conn = conn
        self.keys = keys
        self.worker_name = worker_name
        self.lease = lease
        self.keep = keep or Keep.defaults()  # how long finished and failed jobs stay (see retention.py)
        self.queue = Queue(keys.queue("notify"), connection=conn)
        self.started = StartedJobRegistry(queue=self.queue)
        self.scheduled = ScheduledJobRegistry(queue=self.queue)
        self.finished = FinishedJobRegistry(queue=self.queue)
        self.failed = FailedJobRegistry(queue=self.queue)
        self.aside_ring = keys.webhook_aside()
        self._claim = conn.register_script(fair_claim.SCRIPT)
        self._requeue = conn.register_script(REQUEUE)
        self._promote = conn.register_script(PROMOTE)
        self._stats: Counter = Counter()  # finished/failed counts not yet added to the worker record

    @property
    def _lease_ttl(self) -> int:
        return max(1, math.ceil(self.lease))

    def wait_for_jobs(self, timeout: int = 1) -> None:
        """Block until the queue has a job or `timeout` passes, taking nothing (BLMOVE onto itself)."""
        self.conn.blmove(self.queue.key, self.queue.key, timeout, "LEFT", "LEFT")

    def claim(self, n: int, target_cap: int | None = None, held: dict[str, int] | None = None
              ) -> tuple[list[Claim], dict, fair_claim.ClaimReply]:
        """Take up to n jobs (started, leased), at most `target_cap` held per target counting the
        `held` ones (none: no cap); returns them, the webhook settings and what else it saw."""
        target_cap = n if target_cap is None else target_cap
        execution_ids = [uuid.uuid4().hex for _ in range(n)]
        claimed, raw_settings, targets_aside, more = self._claim(
            keys=[self.queue.key, self.started.key, self.keys.settings, self.aside_ring],
            args=[n, time.time() + self.lease, JOB_KEY_PREFIX, target_cap, fair_claim.SCAN_LIMIT,
                  fair_claim.RING_LIMIT, *fair_claim.held_args(held or {}), *execution_ids])
        reply = fair_claim.ClaimReply(int(targets_aside), bool(more))
        if not claimed:
            return [], {}, reply
        ids = [i.decode() for i in claimed[0::2]]
        raws = [lua_pairs(flat) for flat in claimed[1::2]]
        claims, lookups = [], []
        pipe = self.conn.pipeline(transaction=False)
        for job_id, execution_id, raw in zip(ids, execution_ids, raws, strict=False):
            execution = Execution(execution_id, job_id, self.conn, worker_name=self.worker_name)
            claim = self._restore(job_id, execution, raw)
            if claim is None:
                execution.delete(Job(job_id, connection=self.conn), pipe)  # the job is gone
                continue
            claim.job.prepare_for_execution(self.worker_name, pipe)
            execution.save(self._lease_ttl, pipe)
            claim.job.execution_registry.add(execution, self._lease_ttl, pipe)
            if claim.stored_url is None and claim.account:  # queued before targets were stored
                lookups.append((claim, len(pipe.command_stack)))
                pipe.hget(self.keys.account(claim.account), "webhooks")
            claims.append(claim)
        replies = pipe.execute()
        for claim, index in lookups:
            claim.account_url = replies[index].decode() if replies[index] else None
        return claims, settings_module.decode(lua_pairs(raw_settings)), reply

    def _restore(self, job_id: str, execution: Execution, raw: dict) -> Claim | None:
        if not raw:
            return None
        job = Job(job_id, connection=self.conn)
        try:
            job.restore(raw)
            payload, event_id = job.args[:2]
        except Exception as exc:  # noqa: BLE001 - a corrupt job must not stop the worker
            log.error("job %s cannot be read (%s); failing it", job_id, exc)
            self._fail_unreadable(job, execution, str(exc))
            return None
        enqueued = job.enqueued_at.timestamp() if job.enqueued_at else time.time()
        attempt = Attempt(job_id, event_id, payload, enqueued, int(job.meta.get("attempts", 0)))
        stored = raw.get(webhook_target.URL_FIELD.encode())
        return Claim(job, execution, attempt, payload.get("account") or None,
                     stored_url=stored.decode() if stored is not None else None,
                     target=(raw.get(webhook_target.TARGET_FIELD.encode()) or b"").decode())

    def _fail_unreadable(self, job: Job, execution: Execution, message: str) -> None:
        with self.conn.pipeline() as pipe:
            execution.delete(job, pipe)
            pipe.hset(job.key, "status", JobStatus.FAILED)
            pipe.zadd(self.failed.key, {job.id: time.time() + self.keep.failed})
            pipe.expire(job.key, self.keep.failed)
            pipe.execute()

    def finish(self, claim: Claim, outcome: Outcome, max_attempts: int, backoff_base: float) -> str:
        """Record the attempt's outcome; returns the job's new status (finished/scheduled/failed).

        A failed attempt also leaves an rq Result (retried or failed, with the reason), which is
        what rq-dashboard shows as the job's history and exception. A success leaves none (its
        outcome is the job's meta): a result stream costs Redis over 4 KB however short it is,
        and finished jobs are the many (retention.py).
        """
        job, attempts = claim.job, claim.attempt.attempts_made + 1
        job.meta["attempts"] = attempts
        job.meta["lastOutcome"] = outcome.message
        job.ended_at = now()
        result = dict(worker_name=self.worker_name, execution_id=claim.execution.id,
                      execution_started_at=job.started_at, execution_ended_at=job.ended_at)
        failure_ttl = self.keep.failed
        # Only the fields that change: rewriting the whole job (job.save) costs more than the rest.
        fields = {"ended_at": utcformat(job.ended_at), "meta": job.serializer.dumps(job.meta)}
        with self.conn.pipeline() as pipe:
            claim.execution.delete(job, pipe)
            if outcome.kind != SKIPPED:  # an attempt was made: the admin overview's last hour
                webhook_stats.record(pipe, self.keys, outcome.kind == DELIVERED)
            if outcome.kind in (DELIVERED, SKIPPED):
                status = JobStatus.FINISHED
                ttl = self.keep.finished
                pipe.hset(job.key, mapping={**fields, "status": status})
                self.finished.add(job, ttl, pipe)
                pipe.expire(job.key, ttl)
                pipe.expire(Result.get_key(job.id), ttl)  # earlier failed attempts go with the job
                if outcome.kind == DELIVERED:
                    pipe.delete(self.keys.webhook_error)
            elif outcome.kind == RETRY and attempts < max_attempts:
                status = JobStatus.SCHEDULED
                pipe.hset(job.key, mapping={**fields, "status": status})
                Result.create(job, Result.Type.RETRIED, failure_ttl, exc_string=outcome.message,
                              pipeline=pipe, **result)
                pipe.zadd(self.scheduled.key, {job.id: time.time() + backoff(backoff_base, attempts)})
            else:
                status = JobStatus.FAILED
                job.set_status(status, pipe)
                Result.create_failure(job, failure_ttl, outcome.message, pipeline=pipe, **result)
                self.failed.add(job, ttl=failure_ttl, exc_string=outcome.message, pipeline=pipe)
                pipe.hset(job.key, mapping=fields)  # the registry's save leaves meta out
                pipe.set(self.keys.webhook_error, settings_module.error_flag(
                    claim.attempt.event, outcome.message, outcome.url, outcome.status_code))
            pipe.execute()
        claim.done = True
        if status == JobStatus.FINISHED:
            self._stats["successful_job_count"] += 1
        else:
            self._stats["failed_job_count"] += 1
        return status

    def flush_worker_stats(self) -> None:
        """Add the counts since the last flush to the rq worker record (rq-dashboard shows them)."""
        counts, self._stats = self._stats, Counter()
        if counts:
            with self.conn.pipeline(transaction=False) as pipe:
                for name, count in counts.items():
                    pipe.hincrby(f"rq:worker:{self.worker_name}", name, count)
                pipe.execute()

    def renew_leases(self, claims: list[Claim]) -> None:
        """Push the lease of every held job to now + lease (ZADD XX: a job already requeued
        elsewhere is not put back). Float scores: rq's Execution.heartbeat rounds down to the
        second, which would shorten short leases by up to a second."""
        deadline = time.time() + self.lease
        with self.conn.pipeline(transaction=False) as pipe:
            for claim in claims:
                pipe.zadd(self.started.key, {claim.execution.composite_key: deadline}, xx=True)
                pipe.expire(claim.execution.key, self._lease_ttl)
            pipe.execute()

    def requeue_expired(self) -> int:
        """Put back jobs whose lease ran out (their process died): at least once, never lost."""
        return self._requeue(keys=[self.started.key, self.queue.key, self.aside_ring],
                             args=[JOB_KEY_PREFIX, "expired", time.time()])

    def release(self, claims: list[Claim]) -> int:
        """Give jobs back to the queue now (shutdown after the grace period)."""
        entries = [c.execution.composite_key for c in claims if not c.done]
        if not entries:
            return 0
        return self._requeue(keys=[self.started.key, self.queue.key, self.aside_ring],
                             args=[JOB_KEY_PREFIX, "list", *entries])

    def promote_due(self) -> int:
        return self._promote(keys=[self.scheduled.key, self.queue.key], args=[JOB_KEY_PREFIX, time.time()])
