"""The one way every loop meets Redis errors: RedisTrouble (and retry_until_done).

Whatever the kind (shared.redis_errors), transient or a refusal: log once per kind (what failed
and the server's message, never the command's arguments), remind at most once a minute while it
lasts, back off and retry, count each failure in mailpulse_redis_errors{process,kind}, and hold
mailpulse_redis_failing{process,kind} at 1 while it lasts. That gauge is a live gauge in the
metrics files, so the web process's /health can name a worker's trouble without asking Redis
(which may be the very thing refusing).

Metric hooks run in ordinary code only (never a signal handler): see shared.metrics.definitions.
"""

from __future__ import annotations

import logging
import random
import threading
import time

import redis

from .metrics import definitions as metrics
from .redis_errors import kind_of, message_of

log = logging.getLogger(__name__)

REMIND_EVERY = 60.0  # seconds between reminders of a lasting failure
BACKOFF_MIN, BACKOFF_MAX = 0.5, 15.0


class _Failing:
    """Which kinds fail in this process, per loop: the gauge is 1 while any loop has the kind."""

    def __init__(self):
        self._lock = threading.Lock()
        self._loops: dict[str, set[str]] = {}  # kind -> names of loops failing with it

    def set(self, process: str, kind: str, loop: str, failing: bool) -> None:
        with self._lock:
            loops = self._loops.setdefault(kind, set())
            before = bool(loops)
            (loops.add if failing else loops.discard)(loop)
            now = bool(loops)
        if now != before:
            metrics.safely(metrics.redis_failing.labels(process=process, kind=kind).set, int(now))

    def kinds(self) -> list[str]:
        with self._lock:
            return sorted(kind for kind, loops in self._loops.items() if loops)


FAILING = _Failing()


def failing_kinds() -> list[str]:
    """Kinds some loop of this process is failing with right now."""
    return FAILING.kinds()


class RedisTrouble:
    """The Redis errors of one loop (or one kind of request) of a process.

        trouble = RedisTrouble("lease renewal", "imap")
        try: ...; trouble.succeeded()
        except redis.RedisError as exc: stop.wait(trouble.failed(exc))
    """

    def __init__(self, what: str, process: str, logger: logging.Logger | None = None, loop: bool = True):
        """loop=False for errors met by requests (no one retries them): counted and logged, but
        not held in mailpulse_redis_failing, which says what keeps failing until Redis is back."""
        self.what = what
        self.process = process
        self.log = logger or log
        self.loop = loop
        self.kind: str | None = None  # the kind failing now, if any
        self.since = 0.0
        self.failures = 0
        self._reminded = 0.0

    def failed(self, exc: BaseException) -> float:
        """Record one failure; returns the seconds to wait before trying again."""
        kind = kind_of(exc)
        now = time.monotonic()
        metrics.safely(metrics.redis_errors.labels(process=self.process, kind=kind).inc)
        if kind != self.kind:
            if self.kind is not None and self.loop:
                FAILING.set(self.process, self.kind, self.what, False)
            self.log.warning("%s: Redis unavailable, retrying with backoff (%s): %s",
                             self.what, kind, message_of(exc))
            self.kind, self.since, self._reminded, self.failures = kind, now, now, 0
            if self.loop:
                FAILING.set(self.process, kind, self.what, True)
        elif now - self._reminded >= REMIND_EVERY:
            self.log.warning("%s: Redis still failing (%s) for %.0f s: %s",
                             self.what, kind, now - self.since, message_of(exc))
            self._reminded = now
        self.failures += 1
        delay = min(BACKOFF_MAX, BACKOFF_MIN * 2 ** min(self.failures - 1, 10))
        return delay * random.uniform(0.5, 1.0)

    def succeeded(self) -> None:
        if self.kind is None:
            return
        self.log.info("%s works again, Redis is back (it failed with %s for %.0f s)",
                      self.what, self.kind, time.monotonic() - self.since)
        if self.loop:
            FAILING.set(self.process, self.kind, self.what, False)
        self.kind, self.failures = None, 0


def retry_until_done(what: str, process: str, action, stop=None, logger: logging.Logger | None = None):
    """action()'s value, retried through RedisTrouble while Redis errors; None once `stop` is set.

    `stop` is a threading.Event (gevent's, in patched processes); without one, retries forever.
    """
    trouble = RedisTrouble(what, process, logger)
    while True:
        try:
            value = action()
        except redis.RedisError as exc:
            delay = trouble.failed(exc)
            if stop is None:
                time.sleep(delay)
            elif stop.wait(delay):
                return None
            continue
        trouble.succeeded()
        return value
