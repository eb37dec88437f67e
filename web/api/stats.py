"""GET /v1/stats: version and live workers."""

from __future__ import annotations

from flask import current_app, jsonify

from shared import __version__

from ..collectors.workers import workers_by_type
from . import blueprint


@blueprint.get("/stats")
def stats():
    cfg = current_app.config
    workers, unresponsive = workers_by_type(cfg["HEARTBEATS"], cfg["MAILPULSE"].HEARTBEAT_INTERVAL)
    return jsonify({"version": __version__, "workers": workers, "unresponsiveWorkers": unresponsive})
