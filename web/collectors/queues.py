"""queue_size{queue,state} read from rq's keys, without the cleanup that rq's `count` runs.

rq registries are sorted sets scored by expiry time (or -1 for "never"); entries whose time has
passed wait for rq's cleanup, so they are left out here rather than cleaned up by a scrape.
Webhook jobs waiting aside for a busy target (workers/webhooks/fair_claim.py) are waiting too.
"""

from __future__ import annotations

import time

import redis
from prometheus_client.core import GaugeMetricFamily
from rq import Queue
from rq.registry import FailedJobRegistry, FinishedJobRegistry, ScheduledJobRegistry, StartedJobRegistry
from rq.suspension import WORKERS_SUSPENDED

from shared.keys import QUEUE_NAMES, Keys
from shared.metrics.definitions import QUEUE_STATES


def queue_sizes(conn: redis.Redis, keys: Keys, now: float | None = None) -> dict[str, dict[str, int]]:
    """{queue label: {state: count}} for every queue of the system."""
    now = time.time() if now is None else now
    # rq's is_suspended() reads in a MULTI, which Redis refuses under maxmemory: read it plainly.
    suspended = bool(conn.exists(WORKERS_SUSPENDED))
    pipe = conn.pipeline(transaction=False)
    for label in QUEUE_NAMES:
        name = keys.queue(label)
        pipe.llen(Queue(name, connection=conn).key)
        for registry in (StartedJobRegistry, FailedJobRegistry, FinishedJobRegistry):
            key = registry(name, connection=conn).key
            pipe.zcount(key, "-inf", 0)  # kept forever
            pipe.zcount(key, now, "+inf")  # not expired yet
        pipe.zcard(ScheduledJobRegistry(name, connection=conn).key)
    pipe.lrange(keys.webhook_aside(), 0, -1)
    replies = pipe.execute()
    aside = {"notify": _aside_count(conn, keys.webhook_aside(), replies.pop())}
    replies = iter(replies)
    sizes = {}
    for label in QUEUE_NAMES:
        waiting = next(replies) + aside.get(label, 0)
        active, failed, completed = (next(replies) + next(replies) for _ in range(3))
        sizes[label] = {
            "waiting": 0 if suspended else waiting,
            "paused": waiting if suspended else 0,  # `rq suspend` holds every queue
            "active": active, "delayed": next(replies), "failed": failed, "completed": completed,
        }
    return sizes


def _aside_count(conn: redis.Redis, ring: str, targets: list[bytes]) -> int:
    """Jobs in the aside lists of `targets` (the targets a busy process set jobs aside for)."""
    if not targets:
        return 0
    pipe = conn.pipeline(transaction=False)
    for target in targets:
        pipe.llen(f"{ring}:{target.decode()}")
    return sum(pipe.execute())


class QueueCollector:
    def __init__(self, conn: redis.Redis, keys: Keys):
        self.conn = conn
        self.keys = keys

    def collect(self):
        family = GaugeMetricFamily("queue_size", "Jobs per queue and state", labels=["queue", "state"])
        for label, states in queue_sizes(self.conn, self.keys).items():
            for state in QUEUE_STATES:
                family.add_metric([label, state], states[state])
        yield family
