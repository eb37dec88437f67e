"""GET /v1/stats: version and live workers."""

from __future__ import annotations

from flask import current_app, jsonify

from shared import __version__

from ..collectors.workers import live_counts
from . import blueprint


@blueprint.get("/stats")
def stats():
    cfg = current_app.config
    counts, unresponsive = live_counts(cfg["HEARTBEATS"], cfg["MAILPULSE"].HEARTBEAT_INTERVAL)
    workers = {}
    for (process_type, _), count in counts.items():
        workers[process_type] = workers.get(process_type, 0) + count
    return jsonify({"version": __version__, "workers": workers, "unresponsiveWorkers": unresponsive})
