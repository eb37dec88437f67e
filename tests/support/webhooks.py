"""Helpers for webhook tests: settings, emitting events, the notify queue's registries, metrics."""

from __future__ import annotations

import redis
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from rq import Queue

from shared.events import emit
from shared.keys import Keys
from shared.stores.settings import SettingsStore

KEYS = Keys("")


def enable_webhooks(conn: redis.Redis, url: str, events=("*",)) -> None:
    settings = {"webhooks": url, "webhooksEnabled": True, "webhookEvents": list(events)}
    SettingsStore(conn, KEYS).update(settings)


def emit_many(conn: redis.Redis, n: int, event="messageNew", account: str | None = "acc1") -> list[str]:
    return [emit(conn, KEYS, event, account=account, data={"n": i}) for i in range(n)]


def notify_queue(conn: redis.Redis) -> Queue:
    return Queue(KEYS.queue("notify"), connection=conn)


def add_failed_job(conn: redis.Redis):
    """A job straight into notify's failed registry (the webhooks worker never takes those)."""
    queue = notify_queue(conn)
    job = queue.enqueue("os.getcwd")
    queue.remove(job)
    queue.failed_job_registry.add(job, ttl=600, exc_string="boom")
    return job


def registry_ids(conn: redis.Redis) -> dict[str, set[str]]:
    """Job ids per place, read without rq's clean-up (which would move expired entries)."""
    queue = notify_queue(conn)

    def members(registry) -> set[str]:
        return {registry.parse_job_id(m) for m in conn.zrange(registry.key, 0, -1)}

    return {"queued": set(queue.get_job_ids()), "aside": set().union(*aside_ids(conn).values()),
            "started": members(queue.started_job_registry),
            "scheduled": members(queue.scheduled_job_registry),
            "finished": members(queue.finished_job_registry), "failed": members(queue.failed_job_registry)}


def aside_ids(conn: redis.Redis) -> dict[str, list[str]]:
    """{target: job ids waiting aside for it, in order} (workers/webhooks/fair_claim.py)."""
    ring = KEYS.webhook_aside()
    return {t.decode(): [i.decode() for i in conn.lrange(f"{ring}:{t.decode()}", 0, -1)]
            for t in conn.lrange(ring, 0, -1)}


def metric_samples(metrics_dir: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} read from the processes' multiprocess files.

    Read while the processes run: files of live processes are all there (never folded away).
    """
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=metrics_dir)
    samples = {}
    for family in registry.collect():
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def counter(samples: dict, name: str, **labels) -> float:
    return samples.get((name + "_total", tuple(sorted(labels.items()))), 0.0)
