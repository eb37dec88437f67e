"""A collector that cannot read its part leaves out only its own families, for that scrape.

Redis may be down, an ACL may forbid INFO or SLOWLOG, a bug may raise: /metrics still answers
with everything else. Each failure is counted in mailpulse_scrape_errors{collector} and logged
(Redis errors through shared.redis_errors: once per kind, then a reminder a minute; anything
else with its traceback, once a minute).
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from flask import g, has_request_context

from shared.metrics import definitions as metrics
from shared.redis_errors import kind_of
from shared.redis_trouble import RedisTrouble

log = logging.getLogger(__name__)
BUG_LOG_EVERY = 60.0


UNREACHABLE = ("connection", "timeout")  # kinds after which the rest of a scrape skips Redis


def redis_unreachable() -> bool:
    """Whether this request already found Redis unreachable (each further try could wait out
    a connect timeout: a scrape must end well within Prometheus's 10 s)."""
    return has_request_context() and g.get("redis_unreachable", False)


def found_unreachable(exc: BaseException) -> None:
    if has_request_context() and kind_of(exc) in UNREACHABLE:
        g.redis_unreachable = True


class Guarded:
    def __init__(self, name: str, collector, uses_redis: bool = True):
        self.name = name
        self.collector = collector
        self.uses_redis = uses_redis
        self.trouble = RedisTrouble(f"/metrics collector {name}", "web", log, loop=False)
        self._bug_logged = 0.0
        self._lock = threading.Lock()  # scrapes run in several waitress threads at once

    def collect(self):
        if self.uses_redis and redis_unreachable():
            return self._failed()
        try:
            families = list(self.collector.collect())
        except redis.RedisError as exc:
            found_unreachable(exc)
            with self._lock:
                self.trouble.failed(exc)
            return self._failed()
        except Exception:  # noqa: BLE001 - by design: one collector never breaks /metrics
            with self._lock:
                due = time.monotonic() - self._bug_logged >= BUG_LOG_EVERY
                if due:
                    self._bug_logged = time.monotonic()
            if due:
                log.exception("/metrics collector %s failed; its metrics are left out", self.name)
            return self._failed()
        with self._lock:
            self.trouble.succeeded()
        return families

    def _failed(self) -> list:
        metrics.safely(metrics.scrape_errors.labels(collector=self.name).inc)
        return []
