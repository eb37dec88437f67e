"""The webhooks worker loop: up to WEBHOOK_CONCURRENCY deliveries in flight, one greenlet each,
at most WEBHOOK_TARGET_CONCURRENCY of them held for one target (fair_claim.py).

Why not rq's Worker: it runs one job at a time (forking a process per job by default, which
also leaves a metrics file per job), and its per-job state (`worker.execution`, the current job,
SIGALRM timeouts) assumes a single job, so a gevent pool under it would race. This loop keeps
rq's data model instead (Queue, Job, Execution, registries, the worker record rq-dashboard
lists) and drives many jobs at once, batching Redis round trips (jobs.py).

Greenlets: one dispatcher (claims jobs while fewer than `jobs_held` are held, else blocks on the
queue; while jobs wait aside, it also wakes when a delivery ends), one maintenance loop (leases,
due retries, jobs of dead processes, the rq worker heartbeat), and one per job, which takes one
of WEBHOOK_CONCURRENCY HTTP slots for its attempt.
SIGTERM: the dispatcher stops claiming; attempts in flight get WEBHOOK_GRACE seconds; jobs not
started or not finished by then are handed back to the queue at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import uuid
from collections import Counter

import gevent
import gevent.event
import gevent.lock
import gevent.pool
import redis
from rq import SimpleWorker
from rq.suspension import is_suspended
from rq.worker import WorkerStatus

from shared import __version__
from shared.metrics import definitions as metrics
from shared.redis_conn import connect
from shared.redis_errors import kind_of
from shared.redis_trouble import RedisTrouble, retry_until_done
from shared.secret import service_secret

from ..loops import LoopWatch
from . import egress
from .client import WebhookClient
from .delivery import DELIVERED, RETRY, SKIPPED, Outcome, attempt, target_url
from .jobs import Claim, JobStore
from .retention import Keep, Retention

log = logging.getLogger(__name__)
MAINTENANCE_INTERVAL = 0.5  # seconds between checks for due retries and expired leases
PROCESS = "webhooks"  # the process label of mailpulse_redis_errors / mailpulse_redis_failing


def jobs_held(concurrency: int) -> int:
    """Jobs one process holds at most (started in rq terms): attempts in flight plus prefetch."""
    return concurrency + max(1, concurrency // 5)


class WebhookWorker:
    def __init__(self, config, keys):
        self.config = config
        self.concurrency = config.WEBHOOK_CONCURRENCY
        self.target_cap = config.WEBHOOK_TARGET_CONCURRENCY
        # Own client: deliveries need up to `concurrency` connections plus the blocking wait.
        self.conn = connect(config, max_connections=self.concurrency + 10)
        self.secret = service_secret(config)
        name = f"mailpulse-webhooks.{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex[:6]}"
        self.name = name
        self.store = JobStore(self.conn, keys, name, config.WEBHOOK_LEASE, Keep.from_config(config))
        self.retention = Retention(self.conn, self.store.queue, self.store.keep)
        self.rq_worker: SimpleWorker | None = None  # made in run(): it talks to Redis at once
        egress.configure(config.WEBHOOK_PRIVATE_TARGETS)
        self.client = WebhookClient(self.concurrency, config.WEBHOOK_TIMEOUT, f"mailpulse/{__version__}")
        # Greenlets per job: `concurrency` HTTP attempts plus a few claimed ahead, so that a
        # finished attempt's slot goes to the next job at once, not after Redis round trips.
        self.deliveries = gevent.pool.Pool(jobs_held(self.concurrency))
        self.http_slots = gevent.lock.Semaphore(self.concurrency)
        self.held: dict[str, Claim] = {}  # claimed and not yet recorded, by execution id
        # Per target: at most `target_cap` attempts in flight (its slots), and jobs_held(target_cap)
        # jobs held (what the claim counts), so that the next one is ready when a slot frees.
        self.held_per_target: Counter = Counter()
        self.target_slots: dict[str, gevent.lock.Semaphore] = {}
        # While jobs wait aside, the dispatcher waits for a delivery to end (room for them) or a
        # new job, whichever comes first: the blocking wait on the queue runs in its own greenlet.
        self.wake = gevent.event.Event()
        self.queue_watch: gevent.Greenlet | None = None
        self.stopping = gevent.event.Event()
        self.suspended = False
        self.watch = LoopWatch()
        # Every Redis error of this process, transient or a refusal (MISCONF, NOPERM, OOM, ...),
        # is retried with backoff, logged once per kind and counted (shared.redis_trouble).
        self.claim_trouble = RedisTrouble("claiming jobs", PROCESS, log)
        self.record_trouble = RedisTrouble("recording outcomes", PROCESS, log)
        self.upkeep_trouble = RedisTrouble("maintenance", PROCESS, log)

    def run(self, stop) -> None:
        self.rq_worker = retry_until_done("start", PROCESS, self._make_rq_worker, stop, log)
        if self.rq_worker is None:
            return  # stopped before Redis ever answered
        retry_until_done("start", PROCESS, self.rq_worker.register_birth, stop, log)
        self.suspended = bool(retry_until_done("start", PROCESS, lambda: is_suspended(self.conn), stop, log))
        upkeep = self.watch.spawn("maintenance", self._maintenance_loop, stop)
        log.info("delivering webhooks, up to %d at a time", self.concurrency)
        try:
            self._dispatch(stop)
        finally:
            self.stopping.set()
            if self.queue_watch is not None:
                self.queue_watch.kill()
            self._drain()
            upkeep.kill()
            self._once_while_stopping("leaving the worker registry", self.rq_worker.register_death)
            self.client.close()
        self.watch.check()  # a dead maintenance loop: exit non-zero, the supervisor restarts us

    def _make_rq_worker(self) -> SimpleWorker:
        """The rq worker record rq-dashboard lists (its loop is never run: ours is)."""
        return SimpleWorker([self.store.queue], name=self.name, connection=self.conn,
                            worker_ttl=max(30, int(self.config.WEBHOOK_LEASE)))

    def _dispatch(self, stop) -> None:
        while not stop.is_set() and self.watch.died is None:
            if self.suspended:  # `rq suspend`: queue_size shows the backlog as paused
                stop.wait(MAINTENANCE_INTERVAL)
                continue
            free = self.deliveries.free_count()
            if free == 0:
                self.deliveries.wait_available(timeout=1)
                continue
            self.wake.clear()  # before the claim: a delivery ending during it is not missed
            try:
                claims, settings, seen = self.store.claim(free, jobs_held(self.target_cap),
                                                          self.held_per_target)
            except redis.RedisError as exc:
                stop.wait(self.claim_trouble.failed(exc))
                continue
            self.claim_trouble.succeeded()
            for claim in claims:
                url = target_url(settings, claim.stored_url, claim.account_url, claim.attempt.event)
                self.held[claim.execution.id] = claim
                self.held_per_target[claim.target] += 1
                self.deliveries.spawn(self._deliver, claim, url)
            if len(claims) < free and not seen.more:  # it took all there was to take: wait
                try:
                    self._wait_for_work(seen.targets_aside)
                except redis.RedisError as exc:
                    stop.wait(self.claim_trouble.failed(exc))

    def _wait_for_work(self, targets_aside: int) -> None:
        """Nothing claimable now. Without jobs aside, only a new job brings work: wait on the queue.
        With, a delivery ending may make room for some too: wait for either."""
        if not targets_aside:
            self.store.wait_for_jobs(timeout=1)
            return
        if self.queue_watch is None or self.queue_watch.dead:  # one blocking wait at a time
            self.queue_watch = gevent.spawn(self._watch_queue)
        self.wake.wait(timeout=1)

    def _watch_queue(self) -> None:
        try:
            self.store.wait_for_jobs(timeout=1)
        except redis.RedisError:
            pass  # the dispatcher's next claim meets it too, and backs off
        self.wake.set()

    def _target_slot(self, target: str):
        if not target:  # nobody, or a job from before targets were stored: no cap
            return contextlib.nullcontext()
        if target not in self.target_slots:
            self.target_slots[target] = gevent.lock.Semaphore(self.target_cap)
        return self.target_slots[target]

    def _deliver(self, claim: Claim, url: str | None) -> None:
        # The target's slot first: a job waiting for its target holds none of the shared slots.
        with self._target_slot(claim.target), self.http_slots:
            if self.stopping.is_set():
                return  # claimed ahead but not started: _drain hands it back
            try:
                outcome = attempt(self.client, self.secret, claim.attempt, url)
            except Exception as exc:  # noqa: BLE001 - a bug here must not take the worker down
                log.exception("webhook job %s: unexpected error", claim.job.id)
                outcome = Outcome(RETRY, f"internal error: {type(exc).__name__}", url or "")
        try:
            self._record(claim, outcome)
        except Exception:  # noqa: BLE001 - the job's lease runs out and it is delivered again
            log.exception("webhook job %s: cannot record the outcome", claim.job.id)
        finally:
            self.held.pop(claim.execution.id, None)  # no longer renewed from here on
            self.held_per_target[claim.target] -= 1
            if self.held_per_target[claim.target] <= 0:  # nobody holds or waits for its slots
                del self.held_per_target[claim.target]
                self.target_slots.pop(claim.target, None)
            self.wake.set()

    def _record(self, claim: Claim, outcome: Outcome) -> None:
        # Counted first: once the job shows as finished or failed, its attempt is counted too.
        status = "completed" if outcome.kind in (DELIVERED, SKIPPED) else "failed"
        metrics.safely(metrics.queues_processed.labels(queue="notify", status=status).inc)
        while True:
            try:
                self.store.finish(claim, outcome, self.config.WEBHOOK_ATTEMPTS, self.config.WEBHOOK_BACKOFF)
                self.record_trouble.succeeded()
                break
            except redis.RedisError as exc:
                # Keep the outcome until Redis is back; meanwhile the lease may run out and
                # another process deliver again (at least once).
                gevent.sleep(self.record_trouble.failed(exc))
        if outcome.kind not in (DELIVERED, SKIPPED):
            log.info("webhook job %s (%s) attempt %d failed: %s", claim.job.id, claim.attempt.event,
                     claim.attempt.attempts_made + 1, outcome.message)

    def _maintenance_loop(self, stop) -> None:
        """Runs until killed. A Redis error is retried; any other error ends the loop, and with
        it the process (LoopWatch): no process may deliver with leases nobody renews."""
        renew_every = self.config.WEBHOOK_LEASE / 3  # two renewals may fail before a lease runs out
        last_renewal = time.monotonic()
        while True:
            delay = min(MAINTENANCE_INTERVAL, renew_every)
            try:
                self.suspended = is_suspended(self.conn)
                self.store.promote_due()
                if not stop.is_set():
                    self.store.requeue_expired()
                if time.monotonic() - last_renewal >= renew_every:
                    last_renewal = time.monotonic()
                    self.store.renew_leases(list(self.held.values()))
                    self.rq_worker.heartbeat()
                self.store.flush_worker_stats()
                self.retention.trim_when_due()
                self._show_state()
                self.upkeep_trouble.succeeded()
            except redis.RedisError as exc:
                # Backoff capped: lease renewals are due every WEBHOOK_LEASE/3.
                delay = min(self.upkeep_trouble.failed(exc), renew_every)
            gevent.sleep(delay)

    def _show_state(self) -> None:
        """busy/idle on the rq worker record, as rq-dashboard lists workers."""
        state = WorkerStatus.BUSY if self.held else WorkerStatus.IDLE
        if state != self.rq_worker.get_state():
            self.rq_worker.set_state(state)

    def _drain(self) -> None:
        """After stop: let deliveries finish within the grace period, then hand the rest back."""
        if self.held:
            log.info("waiting up to %d s for deliveries in flight", self.config.WEBHOOK_GRACE)
        self.deliveries.join(timeout=self.config.WEBHOOK_GRACE)
        left = list(self.held.values())
        self.deliveries.kill(timeout=5)
        if left:
            released = self._once_while_stopping("handing back jobs (their leases will expire)",
                                                 lambda: self.store.release(left))
            if released is not None:
                log.info("%d jobs not delivered before stopping are back in the queue", released)

    def _once_while_stopping(self, what: str, action):
        """action()'s value, or None on a Redis error: a stopping process does not wait for Redis."""
        try:
            return action()
        except redis.RedisError as exc:
            RedisTrouble(what, PROCESS, log, loop=False).failed(exc)
            log.warning("%s: given up while stopping (%s)", what, kind_of(exc))
            return None


def work(config, lifecycle, stop) -> None:
    WebhookWorker(config, lifecycle.keys).run(stop)
