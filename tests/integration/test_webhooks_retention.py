"""Bounded Redis: finished and failed webhook jobs are kept as configured, then nothing is left."""

from __future__ import annotations

import json
import time

from rq import Queue

from support.receiver import Receiver
from support.servers import wait_for
from support.webhooks import KEYS, enable_webhooks, notify_queue, registry_ids
from workers.webhooks import retention as retention_module
from workers.webhooks.retention import Keep, Retention


def failing(request) -> int:
    return 500 if json.loads(request.body)["data"].get("fail") else 200


def emit_mixed(conn, ok: int, bad: int) -> tuple[list[str], list[str]]:
    from shared.events import emit

    good = [emit(conn, KEYS, "messageNew", account="acc1", data={"n": i}) for i in range(ok)]
    failed = [emit(conn, KEYS, "messageNew", account="acc1", data={"n": i, "fail": True})
              for i in range(bad)]
    return good, failed


def job_keys(conn) -> set[str]:
    return {k.decode() for pattern in ("rq:job:*", "rq:results:*") for k in conn.scan_iter(pattern)}


def drained(conn) -> bool:
    queue = notify_queue(conn)
    return not (conn.llen(queue.key) or conn.zcard(queue.started_job_registry.key)
                or conn.zcard(queue.scheduled_job_registry.key))


def test_keep_times_then_nothing_is_left(conn, env, spawn):
    env.update(WEBHOOK_KEEP_FINISHED="8", WEBHOOK_KEEP_FAILED="10", WEBHOOK_ATTEMPTS="2",
               WEBHOOK_BACKOFF="0.2")
    with Receiver(respond=failing) as receiver:
        enable_webhooks(conn, receiver.url)
        good, bad = emit_mixed(conn, 6, 3)
        spawn("workers.webhooks", env)
        # Visible for a while (rq-dashboard), with the keep time as their time to live ...
        wait_for(lambda: set(good) <= registry_ids(conn)["finished"], timeout=60, what="the deliveries")
        for job_id in good:
            assert 0 < conn.ttl(f"rq:job:{job_id}") <= 8
            assert not conn.exists(f"rq:results:{job_id}")  # a delivery leaves no result stream
        wait_for(lambda: set(bad) <= registry_ids(conn)["failed"], timeout=60,
                 what="the failures to be final")
        for job_id in bad:
            assert 0 < conn.ttl(f"rq:job:{job_id}") <= 10 and 0 < conn.ttl(f"rq:results:{job_id}") <= 10
            assert "HTTP 500" in notify_queue(conn).fetch_job(job_id).latest_result().exc_string
        # ... and then gone: job hashes, result streams and the registries' entries.
        wait_for(lambda: not job_keys(conn) and not any(registry_ids(conn).values()), timeout=60,
                 what="every job and registry entry to go")
    assert len(receiver.requests) == 6 + 3 * 2


def test_failed_jobs_beyond_the_most_kept_go_oldest_first(conn, env, spawn):
    env.update(WEBHOOK_KEEP_FAILED_MAX="3", WEBHOOK_ATTEMPTS="1")
    with Receiver(respond=failing) as receiver:
        enable_webhooks(conn, receiver.url)
        _, older = emit_mixed(conn, 0, 4)
        spawn("workers.webhooks", env)
        wait_for(lambda: drained(conn) and len(registry_ids(conn)["failed"]) == 3, timeout=60,
                 what="four failures trimmed to three")
        _, newer = emit_mixed(conn, 0, 3)  # they fail after every one of the older ones
        wait_for(lambda: registry_ids(conn)["failed"] == set(newer), timeout=60,
                 what="the older failures to make room for the newer")
    assert job_keys(conn) == {f"rq:{kind}:{j}" for j in newer for kind in ("job", "results")}
    assert len(receiver.requests) == 7


def test_trim_forgets_dead_rq_workers(conn):
    queue = Queue(KEYS.queue("notify"), connection=conn)
    conn.sadd("rq:workers", "rq:worker:gone.1")
    conn.sadd("rq:workers:" + queue.name, "rq:worker:gone.1")
    Retention(conn, queue, Keep(600, 600, 10)).trim()
    assert not conn.smembers("rq:workers") and not conn.smembers("rq:workers:" + queue.name)


def test_trim_drops_the_oldest_failures_in_batches(conn, monkeypatch):
    queue = notify_queue(conn)
    ids = []
    for i in range(25):
        job = queue.enqueue("os.getcwd")
        queue.remove(job)
        conn.zadd(queue.failed_job_registry.key, {job.id: time.time() + 3600 + i})  # expiring in order
        conn.xadd(f"rq:results:{job.id}", {"type": "2"})
        ids.append(job.id)
    monkeypatch.setattr(retention_module, "TRIM_BATCH", 4)  # several script calls in one trim
    assert Retention(conn, queue, Keep(600, 600, 5)).trim() == 20
    assert [i.decode() for i in conn.zrange(queue.failed_job_registry.key, 0, -1)] == ids[-5:]
    assert job_keys(conn) == {f"rq:{kind}:{j}" for j in ids[-5:] for kind in ("job", "results")}
