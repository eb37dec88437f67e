"""GET /health (no auth): Redis answers a write/read round trip and every worker type is alive.

Each check writes its own probe key (concurrent checks never read each other's value), and the
answer, given to anyone, never names the Redis host, port or password: the error goes to the log.
"""

from __future__ import annotations

import logging
import secrets
import time

from flask import Blueprint, current_app, jsonify

from shared.heartbeats import is_live
from shared.redis_conn import TRANSIENT_ERRORS

log = logging.getLogger(__name__)
blueprint = Blueprint("health", __name__)
WORKER_TYPES = ("imap", "webhooks")


@blueprint.get("/health")
def health():
    cfg = current_app.config
    conn, keys, interval = cfg["REDIS"], cfg["KEYS"], cfg["MAILPULSE"].HEARTBEAT_INTERVAL
    problems = []
    live = {t: 0 for t in ("web",) + WORKER_TYPES}
    try:
        probe = secrets.token_hex(8)
        key = f"{keys.health_probe}:{probe}"
        with conn.pipeline() as pipe:  # MULTI: the write, the read and the clean-up in one round trip
            _, read, _ = pipe.set(key, probe, ex=10).get(key).delete(key).execute()
        if (read or b"").decode() != probe:
            problems.append("Redis did not return the value just written")
        now = time.time()
        for worker in cfg["HEARTBEATS"].workers(now):
            if worker.type in live and is_live(worker, interval, now):
                live[worker.type] += 1
    except TRANSIENT_ERRORS as exc:
        log.warning("health check: Redis unavailable: %s", exc)
        problems.append(f"Redis unavailable ({type(exc).__name__})")
    else:
        problems += [f"no live {t} worker" for t in WORKER_TYPES if not live[t]]
    body = {"status": "error" if problems else "ok", "workers": live}
    if problems:
        body["problems"] = problems
    return jsonify(body), 503 if problems else 200
