"""GET /health (no auth): Redis answers a write/read round trip, every worker type is alive, and no
process on this host is failing on Redis.

A worker whose Redis refuses it (a full disk, maxmemory, an ACL) may not be able to tell Redis
so; it holds mailpulse_redis_failing{process,kind} at 1 in its metrics file instead, which this
reads from the host's metrics directory. The answer is unauthenticated: it names the kind of a
Redis error, never the server's address or anything of the credentials.
"""

from __future__ import annotations

import json
import secrets
import threading
import time

import redis
from flask import Blueprint, current_app, jsonify

from shared.metrics import directory as metricsdir
from shared.metrics import folding
from shared.metrics.archive import CorruptFile, read_file
from shared.redis_errors import kind_of
from shared.redis_trouble import failing_kinds
from shared.runtime.heartbeats import is_live

blueprint = Blueprint("health", __name__)
WORKER_TYPES = ("imap", "webhooks")  # always wanted
SENDING = "submit"  # wanted once some account has SMTP settings
_lock = threading.Lock()


def failing_on_this_host(directory: str) -> dict[str, set[str]]:
    """{kind: process types} of the live processes here that are failing on Redis now."""
    found: dict[str, set[str]] = {kind: {"web"} for kind in failing_kinds()}
    for instance, files in folding.readable(directory).items():
        paths = [path for kind, path in files if kind == "gauge_livemax"]
        if not paths or not metricsdir.is_alive(instance):
            continue
        for path in paths:
            try:
                entries = read_file(path)
            except (FileNotFoundError, CorruptFile):
                continue
            for key, value, _ in entries:
                name, _, labels, _ = json.loads(key)
                if name == "mailpulse_redis_failing" and value >= 1:
                    found.setdefault(labels["kind"], set()).add(labels["process"])
    return found


@blueprint.get("/health")
def health():
    cfg = current_app.config
    conn, keys, interval = cfg["REDIS"], cfg["KEYS"], cfg["MAILPULSE"].HEARTBEAT_INTERVAL
    problems = []
    live = {t: 0 for t in ("web",) + WORKER_TYPES + (SENDING,)}
    wanted = WORKER_TYPES
    try:
        probe = secrets.token_hex(8)
        key = f"{keys.health_probe}:{probe}"  # one key per check: concurrent checks never collide
        conn.set(key, probe, ex=10)
        answer = conn.get(key)
        conn.delete(key)
        if (answer or b"").decode() != probe:
            problems.append("Redis did not return the value just written")
        if cfg["ACCOUNTS"].with_smtp():
            wanted = WORKER_TYPES + (SENDING,)
        now = time.time()
        for worker in cfg["HEARTBEATS"].workers(now):
            if worker.type in live and is_live(worker, interval, now):
                live[worker.type] += 1
    except redis.RedisError as exc:
        with _lock:
            cfg["REQUEST_TROUBLE"].failed(exc)
        problems.append(f"Redis unavailable ({kind_of(exc)})")
    else:
        with _lock:
            cfg["REQUEST_TROUBLE"].succeeded()
        problems += [f"no live {t} worker" for t in wanted if not live[t]]
    failing = failing_on_this_host(cfg["MAILPULSE"].PROMETHEUS_MULTIPROC_DIR)
    problems += [f"Redis errors ({kind}) in {', '.join(sorted(types))}"
                 for kind, types in sorted(failing.items())]
    body = {"status": "error" if problems else "ok", "workers": live}
    if failing:
        body["redisErrors"] = {kind: sorted(types) for kind, types in sorted(failing.items())}
    if problems:
        body["problems"] = problems
    return jsonify(body), 503 if problems else 200
