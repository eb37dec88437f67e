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

from shared.metrics import definitions as metrics
from shared.redis_trouble import RedisTrouble

log = logging.getLogger(__name__)
BUG_LOG_EVERY = 60.0


class Guarded:
    def __init__(self, name: str, collector):
        self.name = name
        self.collector = collector
        self.trouble = RedisTrouble(f"/metrics collector {name}", "web", log)
        self._bug_logged = 0.0
        self._lock = threading.Lock()  # scrapes run in several waitress threads at once

    def collect(self):
        try:
            families = list(self.collector.collect())
        except redis.RedisError as exc:
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
