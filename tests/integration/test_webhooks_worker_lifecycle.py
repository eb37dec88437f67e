"""The webhooks process under load and across restarts: concurrency, SIGKILL, SIGTERM, backlog."""

from __future__ import annotations

import time

from rq import Worker
from rq.suspension import resume, suspend

from shared.keys import Keys
from support.receiver import Receiver
from support.servers import wait_for
from support.webhooks import emit_many, enable_webhooks, notify_queue, registry_ids
from web.collectors.queues import queue_sizes
from workers.webhooks.worker import jobs_held


def test_a_slow_receiver_does_not_serialize_deliveries(conn, env, spawn):
    with Receiver(latency=1.0) as receiver:
        enable_webhooks(conn, receiver.url)
        job_ids = emit_many(conn, 40)
        spawn("workers.webhooks", env)
        wait_for(lambda: set(job_ids) <= registry_ids(conn)["finished"], timeout=30,
                 what="every job to finish")
    # One process had (nearly) all of them in flight at once at the receiver.
    assert receiver.max_in_flight >= 30
    assert len(receiver.event_ids()) == 40 and len(receiver.requests) == 40  # each event once


def test_concurrency_setting_bounds_deliveries_in_flight(conn, env, spawn):
    env.update(WEBHOOK_CONCURRENCY="3")
    with Receiver(latency=0.3) as receiver:
        enable_webhooks(conn, receiver.url)
        job_ids = emit_many(conn, 12)
        spawn("workers.webhooks", env)
        wait_for(lambda: set(job_ids) <= registry_ids(conn)["finished"], timeout=30,
                 what="every job to finish")
    assert receiver.max_in_flight == 3


def test_sigkill_mid_delivery_loses_nothing(conn, env, spawn):
    env.update(WEBHOOK_LEASE="2", WEBHOOK_CONCURRENCY="10")
    with Receiver(latency=1.5) as receiver:
        enable_webhooks(conn, receiver.url)
        job_ids = emit_many(conn, 30)
        event_ids = {notify_queue(conn).fetch_job(j).args[1] for j in job_ids}
        first = spawn("workers.webhooks", env)
        wait_for(lambda: receiver.in_flight >= 10, what="deliveries in flight")
        first.kill()
        held_at_kill = registry_ids(conn)["started"]
        assert len(held_at_kill) == jobs_held(10)  # still started, not lost, while nobody works on them
        spawn("workers.webhooks", env)
        wait_for(lambda: set(job_ids) <= registry_ids(conn)["finished"], timeout=60,
                 what="every job to finish after the restart")
        assert receiver.event_ids() == event_ids  # every event arrived
    places = registry_ids(conn)
    assert not places["started"] and not places["queued"] and not places["failed"]
    counts = {}
    for request in receiver.requests:
        counts[request.event_id] = counts.get(request.event_id, 0) + 1
    redelivered = {e for e, n in counts.items() if n > 1}
    assert len(redelivered) == 10  # the ones cut off by the kill, delivered again (at least once)


def test_sigterm_finishes_deliveries_in_flight_and_takes_no_more(conn, env, spawn):
    env.update(WEBHOOK_CONCURRENCY="3")
    with Receiver(latency=1.0) as receiver:
        enable_webhooks(conn, receiver.url)
        job_ids = emit_many(conn, 6)
        worker = spawn("workers.webhooks", env)
        wait_for(lambda: receiver.in_flight == 3, what="three deliveries in flight")
        assert worker.stop() == 0
        places = registry_ids(conn)
    assert len(places["finished"]) == 3 and len(receiver.requests) == 3
    assert places["queued"] == set(job_ids) - places["finished"]  # the rest waits for the next worker
    assert not places["started"]
    assert not [w for w in Worker.all(connection=conn) if w.name.startswith("mailpulse-webhooks")]


def test_sigterm_after_the_grace_period_hands_jobs_back(conn, env, spawn):
    env.update(WEBHOOK_GRACE="1")
    with Receiver(latency=4.0) as receiver:
        enable_webhooks(conn, receiver.url)
        job_ids = emit_many(conn, 2)
        worker = spawn("workers.webhooks", env)
        wait_for(lambda: receiver.in_flight == 2, what="two deliveries in flight")
        assert worker.stop() == 0
        places = registry_ids(conn)
    assert places["queued"] == set(job_ids)
    assert not places["started"] and not places["finished"]


def test_queue_size_adds_up_while_a_backlog_drains(conn, env, spawn):
    env.update(WEBHOOK_CONCURRENCY="5")
    keys = Keys("")
    with Receiver(latency=0.2) as receiver:
        enable_webhooks(conn, receiver.url)
        emit_many(conn, 40)
        spawn("workers.webhooks", env)
        samples = []

        def drained() -> bool:
            samples.append(queue_sizes(conn, keys)["notify"])
            return samples[-1]["completed"] == 40

        wait_for(drained, interval=0, what="the backlog to drain")
    for sizes in samples:
        assert sizes["waiting"] + sizes["active"] + sizes["completed"] == 40, sizes
        assert sizes["active"] <= jobs_held(5) and sizes["failed"] == 0 and sizes["delayed"] == 0
    assert any(0 < s["waiting"] < 40 for s in samples)  # seen mid-drain, not only before and after
    assert len(receiver.requests) == 40


def test_rq_suspend_holds_deliveries_until_resume(conn, env, spawn):
    suspend(conn)
    with Receiver() as receiver:
        enable_webhooks(conn, receiver.url)
        [job_id] = emit_many(conn, 1)
        spawn("workers.webhooks", env)
        wait_for(lambda: Worker.all(connection=conn), what="the worker to register")
        time.sleep(1.5)  # several maintenance rounds: it would have claimed the job by now
        assert registry_ids(conn)["queued"] == {job_id} and not receiver.requests
        assert queue_sizes(conn, Keys(""))["notify"]["paused"] == 1
        resume(conn)
        wait_for(lambda: job_id in registry_ids(conn)["finished"], what="the job to finish after resume")


def test_deliveries_longer_than_the_lease_are_not_handed_out_twice(conn, env, spawn):
    env.update(WEBHOOK_LEASE="1", WEBHOOK_TIMEOUT="10")
    with Receiver(latency=3.0) as receiver:
        enable_webhooks(conn, receiver.url)
        job_ids = emit_many(conn, 4)
        spawn("workers.webhooks", env)
        spawn("workers.webhooks", env)  # a second process that would pick up an expired lease
        wait_for(lambda: set(job_ids) <= registry_ids(conn)["finished"], timeout=30,
                 what="every job to finish")
    assert len(receiver.requests) == 4 and len(receiver.event_ids()) == 4
