"""GET /metrics: every process's metrics on this host, plus Redis, queue and worker gauges."""

from __future__ import annotations

import threading

from flask import Blueprint, Response, current_app
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from shared import metrics, metricsdir

from .auth import require_scope
from .collectors.queues import QueueCollector
from .collectors.redis_info import RedisCollector
from .collectors.workers import WorkersCollector
from .exposition import CONTENT_TYPE, render

blueprint = Blueprint("metrics", __name__)
_sweep_lock = threading.Lock()


def sweep_dead_processes(directory: str) -> None:
    """Processes that died without a clean exit: drop their live gauges, count their stop once."""
    with _sweep_lock:
        for _ in metricsdir.sweep_dead(directory):
            metrics.safely(metrics.thread_stops.inc)


@blueprint.get("/metrics")
def metrics_endpoint():
    _, denied = require_scope("metrics")
    if denied is not None:
        return denied
    cfg = current_app.config
    sweep_dead_processes(cfg["MAILPULSE"].PROMETHEUS_MULTIPROC_DIR)
    # A fresh registry per request: the multiprocess files are re-read at every scrape.
    registry = CollectorRegistry(auto_describe=False)
    MultiProcessCollector(registry, path=cfg["MAILPULSE"].PROMETHEUS_MULTIPROC_DIR)
    registry.register(RedisCollector(cfg["REDIS"]))
    registry.register(QueueCollector(cfg["REDIS"], cfg["KEYS"]))
    registry.register(WorkersCollector(cfg["HEARTBEATS"], cfg["MAILPULSE"].HEARTBEAT_INTERVAL))
    return Response(render(registry.collect()), content_type=CONTENT_TYPE)
