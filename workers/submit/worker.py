"""The submit worker loop: up to SUBMIT_CONCURRENCY messages in flight, one greenlet each.

Shaped like the webhooks worker (workers/webhooks/worker.py): a dispatcher claims jobs while
there are free slots, else blocks on the queue; a maintenance loop renews the leases of the
messages in flight, promotes scheduled sends and retries whose time has come, hands the jobs of
dead processes back, and trims finished and failed jobs (the webhooks' WEBHOOK_KEEP_* settings).
SIGTERM: no new claims; sends in flight get GRACE seconds, then the rest are handed back (a
message cut off mid-DATA was not accepted, so sending it again later loses and doubles nothing;
one accepted but not yet recorded is sent again with the same Message-ID: at least once).
"""

from __future__ import annotations

import logging
import time

import gevent
import gevent.pool
import redis

from shared import webhook_target
from shared.mail.mailbox_client import MailboxChannel
from shared.metrics import definitions as metrics
from shared.redis_conn import connect
from shared.redis_errors import kind_of
from shared.redis_trouble import RedisTrouble
from shared.secret import service_secret
from shared.stores.accounts import AccountStore
from workers.webhooks.retention import Keep, Retention

from ..loops import LoopWatch
from .answered import flag_answered
from .delivery import attempt, events_of
from .jobs import SENT, Claim, SubmitJobs
from .sent_copy import SentCopies
from .smtp import SmtpPool

log = logging.getLogger(__name__)
MAINTENANCE_INTERVAL = 0.5
PROCESS = "submit"  # the process label of mailpulse_redis_errors / mailpulse_redis_failing
GRACE = 20  # seconds sends in flight may take to finish at SIGTERM (processes.py waits 30)


class SubmitWorker:
    def __init__(self, config, keys):
        self.config = config
        self.keys = keys
        self.concurrency = config.SUBMIT_CONCURRENCY
        self.conn = connect(config, max_connections=self.concurrency + 10)
        self.accounts = AccountStore(self.conn, keys, service_secret(config))
        self.jobs = SubmitJobs(self.conn, keys, config.SUBMIT_LEASE, Keep.from_config(config))
        self.retention = Retention(self.conn, self.jobs.queue, self.jobs.keep)
        self.smtp = SmtpPool(config.SUBMIT_TIMEOUT)
        self.copies = SentCopies()
        # Flagging a reply's original waits on Redis for the IMAP process's answer: a client whose
        # socket timeout outlasts that wait (the mailbox API's, web/app.py).
        channel_conn = connect(config, socket_connect_timeout=2, socket_timeout=config.API_TIMEOUT + 10)
        self.mailbox = MailboxChannel(channel_conn, keys, config.API_TIMEOUT)
        self.sends = gevent.pool.Pool(self.concurrency)
        self.held: dict[str, Claim] = {}  # claimed and not yet recorded, by started-registry entry
        self.watch = LoopWatch()
        # Every Redis error kind is retried with backoff, logged once per kind and counted.
        self.claim_trouble = RedisTrouble("claiming messages", PROCESS, log)
        self.record_trouble = RedisTrouble("recording sends", PROCESS, log)
        self.upkeep_trouble = RedisTrouble("maintenance", PROCESS, log)

    def run(self, stop) -> None:
        upkeep = self.watch.spawn("maintenance", self._maintenance_loop, stop)
        log.info("sending mail, up to %d messages at a time", self.concurrency)
        try:
            self._dispatch(stop)
        finally:
            self._drain()
            upkeep.kill()
            self.smtp.close()
            self.copies.close()
        self.watch.check()  # a dead maintenance loop: exit non-zero, the supervisor restarts us

    def _dispatch(self, stop) -> None:
        while not stop.is_set() and self.watch.died is None:
            free = self.sends.free_count()
            if free == 0:
                self.sends.wait_available(timeout=1)
                continue
            try:
                claims = self.jobs.claim(free)
                if not claims:
                    self.jobs.wait_for_jobs(timeout=1)
                    self.claim_trouble.succeeded()
                    continue
            except redis.RedisError as exc:
                stop.wait(self.claim_trouble.failed(exc))
                continue
            self.claim_trouble.succeeded()
            for claim in claims:
                self.held[claim.entry] = claim
                self.sends.spawn(self._send, claim)

    def _send(self, claim: Claim) -> None:
        try:
            record = self.accounts.record(claim.payload["account"])  # one read: SMTP and IMAP settings
            outcome = attempt(self.smtp, self.accounts, claim, record)
            self._record(claim, outcome)
            if outcome.kind == SENT and claim.payload.get("copy") is not False:
                self.copies.copy_quietly(self.accounts, claim.payload["account"], record, claim.raw)
            if outcome.kind == SENT and claim.payload.get("answers"):
                flag_answered(self.mailbox, claim.payload["account"], claim.payload["answers"])
        except Exception:  # noqa: BLE001 - the lease runs out and the message is sent again
            log.exception("submit job %s: unexpected error; its lease will hand it out again", claim.queue_id)
            return  # still held: renewed until the process stops, then handed back
        self.held.pop(claim.entry, None)

    def _record(self, claim: Claim, outcome) -> None:
        status_label = "completed" if outcome.kind == SENT else "failed"
        metrics.safely(metrics.queues_processed.labels(queue="submit", status=status_label).inc)
        attempts = self.config.SUBMIT_ATTEMPTS

        def events_for(status: str) -> list[tuple[str, dict]]:
            return events_of(claim, outcome, status, claim.job.meta.get("nextAttempt"), attempts)

        while True:
            try:
                target = webhook_target.resolve(self.conn, self.keys, claim.payload["account"])
                status = self.jobs.finish(claim, outcome.kind, outcome.error, attempts,
                                          self.config.SUBMIT_BACKOFF, events_for, target)
                self.record_trouble.succeeded()
                break
            except redis.RedisError as exc:
                gevent.sleep(self.record_trouble.failed(exc))
        if outcome.kind == SENT:
            log.info("sent %s (%s): %s", claim.queue_id, claim.payload["messageId"], outcome.response)
        else:
            log.info("send of %s attempt %d: %s (%s)", claim.queue_id, claim.attempts_made,
                     outcome.error, status)

    def _maintenance_loop(self, stop) -> None:
        renew_every = self.config.SUBMIT_LEASE / 3
        last_renewal = time.monotonic()
        while True:
            delay = min(MAINTENANCE_INTERVAL, renew_every)
            try:
                self.jobs.promote_due()
                if not stop.is_set():
                    self.jobs.requeue_expired()
                if time.monotonic() - last_renewal >= renew_every:
                    last_renewal = time.monotonic()
                    self.jobs.renew_leases(list(self.held.values()))
                self.retention.trim_when_due()
                self.upkeep_trouble.succeeded()
                self.copies.close_idle()
            except redis.RedisError as exc:  # backoff capped: lease renewals are due every SUBMIT_LEASE/3
                delay = min(self.upkeep_trouble.failed(exc), renew_every)
            gevent.sleep(delay)

    def _drain(self) -> None:
        if self.held:
            log.info("waiting up to %d s for %d sends in flight", GRACE, len(self.held))
        self.sends.join(timeout=GRACE)
        self.sends.kill(timeout=5)
        left = list(self.held.values())
        if left:
            try:
                released = self.jobs.release(left)
                log.info("%d messages not sent before stopping are back in the queue", released)
            except redis.RedisError as exc:
                RedisTrouble("handing back messages", PROCESS, log, loop=False).failed(exc)
                log.warning("could not hand back %d messages (their leases will expire): %s",
                            len(left), kind_of(exc))


def work(config, lifecycle, stop) -> None:
    SubmitWorker(config, lifecycle.keys).run(stop)
