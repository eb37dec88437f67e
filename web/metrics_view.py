"""GET /metrics: every process's metrics on this host, plus Redis, queue and worker gauges."""

from __future__ import annotations

from flask import Blueprint, Response, current_app
from prometheus_client import CollectorRegistry

from shared.metrics import definitions as metrics
from shared.metrics.archive import fold

from .auth import require_scope
from .collectors.imap_accounts import ImapConnectionsCollector
from .collectors.multiprocess import FoldedMultiProcessCollector, report_corrupt
from .collectors.queues import QueueCollector
from .collectors.redis_info import RedisCollector
from .collectors.workers import WorkersCollector
from .exposition import CONTENT_TYPE, render

blueprint = Blueprint("metrics", __name__)


def fold_dead_processes(directory: str) -> None:
    """Fold the files of processes that are gone; count the ones that died uncleanly, once."""
    report = fold(directory)
    for _ in report.crashed:
        metrics.safely(metrics.thread_stops.inc)
    for path in report.set_aside:
        report_corrupt(path, "set aside")


@blueprint.get("/metrics")
def metrics_endpoint():
    _, denied = require_scope("metrics")
    if denied is not None:
        return denied
    cfg = current_app.config
    fold_dead_processes(cfg["MAILPULSE"].PROMETHEUS_MULTIPROC_DIR)
    # A fresh registry per request: the multiprocess files are re-read at every scrape.
    registry = CollectorRegistry(auto_describe=False)
    processes = FoldedMultiProcessCollector(cfg["MAILPULSE"].PROMETHEUS_MULTIPROC_DIR)
    registry.register(ImapConnectionsCollector(processes, cfg["ACCOUNTS"]))
    registry.register(RedisCollector(cfg["REDIS"]))
    registry.register(QueueCollector(cfg["REDIS"], cfg["KEYS"]))
    registry.register(WorkersCollector(cfg["HEARTBEATS"], cfg["MAILPULSE"].HEARTBEAT_INTERVAL))
    return Response(render(registry.collect()), content_type=CONTENT_TYPE)
