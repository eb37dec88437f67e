"""GET /admin: accounts by state, queue sizes, webhooks in the last hour, live workers, Redis memory.

Each figure comes from the same function the /metrics collectors or the API use.
"""

from __future__ import annotations

from flask import current_app, redirect, render_template, url_for

from shared.keys import QUEUE_NAMES
from shared.metrics.definitions import QUEUE_STATES
from shared.stores import webhook_stats

from ..collectors.queues import queue_sizes
from ..collectors.redis_info import memory_limit
from ..collectors.workers import workers_by_type
from . import blueprint


def redis_memory() -> dict:
    info = current_app.config["REDIS"].info("memory")
    return {"used": info.get("used_memory", 0), "peak": info.get("used_memory_peak", 0),
            "max": memory_limit(info),
            "maxmemory_set": bool(info.get("maxmemory"))}


@blueprint.get("/")
def overview():
    cfg = current_app.config
    workers, unresponsive = workers_by_type(cfg["HEARTBEATS"], cfg["MAILPULSE"].HEARTBEAT_INTERVAL)
    return render_template(
        "admin/overview.html", page="overview", accounts=cfg["ACCOUNTS"].count_by_state(),
        queues=queue_sizes(cfg["REDIS"], cfg["KEYS"]), queue_names=QUEUE_NAMES, queue_states=QUEUE_STATES,
        webhooks=webhook_stats.last_hour(cfg["REDIS"], cfg["KEYS"]), workers=workers,
        unresponsive=unresponsive, memory=redis_memory())


@blueprint.get("/overview")
def overview_alias():
    return redirect(url_for("admin.overview"))
