"""threads{type,recent} and unresponsive_workers, from the heartbeats in Redis."""

from __future__ import annotations

import time

from prometheus_client.core import GaugeMetricFamily

from shared.metrics.definitions import PROCESS_TYPES
from shared.runtime.heartbeats import RECENT, Heartbeats, is_live


def live_counts(heartbeats: Heartbeats, interval: float) -> tuple[dict, int]:
    """({(type, recent): live count}, unresponsive count)."""
    now = time.time()
    counts = {(t, r): 0 for t in PROCESS_TYPES for r in ("yes", "no")}
    unresponsive = 0
    for worker in heartbeats.workers(now):
        if not is_live(worker, interval, now):
            unresponsive += 1
        elif worker.type in PROCESS_TYPES:
            counts[(worker.type, "yes" if now - worker.started < RECENT else "no")] += 1
    return counts, unresponsive


def workers_by_type(heartbeats: Heartbeats, interval: float) -> tuple[dict[str, int], int]:
    """({type: live count}, unresponsive count): live_counts without the `recent` split."""
    counts, unresponsive = live_counts(heartbeats, interval)
    return {t: counts[(t, "yes")] + counts[(t, "no")] for t in PROCESS_TYPES}, unresponsive


class WorkersCollector:
    def __init__(self, heartbeats: Heartbeats, interval: float):
        self.heartbeats = heartbeats
        self.interval = interval

    def collect(self):
        counts, unresponsive = live_counts(self.heartbeats, self.interval)
        threads = GaugeMetricFamily("threads", "Live worker processes per type", labels=["type", "recent"])
        for (process_type, recent), count in counts.items():
            threads.add_metric([process_type, recent], count)
        yield threads
        yield GaugeMetricFamily("unresponsive_workers", "Workers whose heartbeat is overdue",
                                value=unresponsive)
