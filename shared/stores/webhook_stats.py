"""Webhook attempts per minute in Redis, for "successes and failures in the last hour".

The `webhooks` metric counters are cumulative and per process; the admin overview wants a
window. Each attempt adds one to a per-minute hash `{success, fail}` that expires after the
window, written in the same pipeline as the job's outcome, so reading the last hour is one
HMGET per minute in one round trip.
"""

from __future__ import annotations

import time

import redis

from ..keys import Keys

WINDOW_MINUTES = 60
KEEP_SECONDS = (WINDOW_MINUTES + 2) * 60


def record(pipe, keys: Keys, success: bool, now: float | None = None) -> None:
    """Queue the count of one attempt on `pipe` (a pipeline the caller executes)."""
    minute = int((time.time() if now is None else now) // 60)
    key = keys.webhook_attempts(minute)
    pipe.hincrby(key, "success" if success else "fail", 1)
    pipe.expire(key, KEEP_SECONDS)


def last_hour(conn: redis.Redis, keys: Keys, now: float | None = None) -> dict[str, int]:
    """{"success": n, "fail": n} over the current minute and the 59 before it."""
    minute = int((time.time() if now is None else now) // 60)
    pipe = conn.pipeline(transaction=False)
    for m in range(minute - WINDOW_MINUTES + 1, minute + 1):
        pipe.hmget(keys.webhook_attempts(m), "success", "fail")
    totals = {"success": 0, "fail": 0}
    for success, fail in pipe.execute():
        totals["success"] += int(success or 0)
        totals["fail"] += int(fail or 0)
    return totals
