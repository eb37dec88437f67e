"""GET /metrics: every process's metrics on this host, plus Redis, queue and worker gauges.

A scrape only reads: the metric files and the archive (folded in the background by the folder
child, web/folding.py), and Redis. Each collector is guarded: one that cannot read its part
(Redis down, an ACL, a bug) leaves out only its families, and the process metrics are served
whenever their files are readable.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app
from prometheus_client import CollectorRegistry

from .auth import require_scope
from .collectors.guarded import Guarded
from .collectors.imap_accounts import ImapConnectionsCollector
from .collectors.multiprocess import FoldedMultiProcessCollector
from .collectors.queues import QueueCollector
from .collectors.redis_info import REDIS_COLLECTORS
from .collectors.workers import WorkersCollector
from .exposition import CONTENT_TYPE, render

blueprint = Blueprint("metrics", __name__)
# The `collector` label of mailpulse_scrape_errors: this closed set.
COLLECTORS = ("processes", "imap_connections", "queues", "workers", *REDIS_COLLECTORS)


@blueprint.get("/metrics")
def metrics_endpoint():
    _, denied = require_scope("metrics")
    if denied is not None:
        return denied
    # A fresh registry per request (the multiprocess files are re-read at every scrape), over
    # collectors made once: their error logs remember what they already said.
    registry = CollectorRegistry(auto_describe=False)
    for collector in current_app.config["COLLECTORS"]:
        registry.register(collector)
    return Response(render(registry.collect()), content_type=CONTENT_TYPE)


def make_collectors(cfg) -> list:
    """The scrape's collectors, each guarded, for app.config["COLLECTORS"]."""
    conn = cfg["REDIS"]
    directory = cfg["MAILPULSE"].PROMETHEUS_MULTIPROC_DIR
    processes = Guarded("processes", FoldedMultiProcessCollector(directory), uses_redis=False)
    return [ImapConnectionsCollector(processes, cfg["ACCOUNTS"], directory),
            *(Guarded(name, collector(conn)) for name, collector in REDIS_COLLECTORS.items()),
            Guarded("queues", QueueCollector(conn, cfg["KEYS"])),
            Guarded("workers", WorkersCollector(cfg["HEARTBEATS"], cfg["MAILPULSE"].HEARTBEAT_INTERVAL))]
