"""The job bookkeeping (workers/webhooks/jobs.py) against a real Redis, without a worker process."""

from __future__ import annotations

import time

from rq.job import Job

from support.webhooks import KEYS, emit_many, notify_queue, registry_ids
from workers.webhooks.delivery import DELIVERED, GIVE_UP, RETRY, Outcome
from workers.webhooks.jobs import JobStore


def store(conn, lease: float = 30) -> JobStore:
    return JobStore(conn, KEYS, "test-worker", lease)


def test_claim_moves_jobs_to_started_with_their_attempt_and_settings(conn):
    conn.hset(KEYS.account("acc1"), "webhooks", "http://127.0.0.1:9/acc1")
    job_ids = emit_many(conn, 3)
    claims, settings, _ = store(conn).claim(2)
    assert [c.job.id for c in claims] == job_ids[:2]  # in queue order
    assert settings["webhooksEnabled"] is False  # defaults when never set
    places = registry_ids(conn)
    assert places["started"] == set(job_ids[:2]) and places["queued"] == {job_ids[2]}
    claim = claims[0]
    assert claim.attempt.payload["event"] == "messageNew" and claim.attempt.attempts_made == 0
    # The account's URL was fixed at emit and comes with the job: no lookup at claim time.
    assert claim.stored_url == "http://127.0.0.1:9/acc1" and claim.account_url is None
    assert claim.target == "http://127.0.0.1:9"
    job = Job.fetch(claim.job.id, connection=conn)
    assert job.get_status() == "started" and job.worker_name == "test-worker"


def test_finish_moves_jobs_to_the_right_registry(conn):
    job_ids = emit_many(conn, 3)
    jobs = store(conn)
    claims, _, _ = jobs.claim(3)
    assert jobs.finish(claims[0], Outcome(DELIVERED, "HTTP 200", "u", 200), 10, 5) == "finished"
    assert jobs.finish(claims[1], Outcome(RETRY, "HTTP 500", "u", 500), 10, 5) == "scheduled"
    assert jobs.finish(claims[2], Outcome(GIVE_UP, "refused", "u"), 10, 5) == "failed"
    places = registry_ids(conn)
    assert places["finished"] == {job_ids[0]} and places["scheduled"] == {job_ids[1]}
    assert places["failed"] == {job_ids[2]} and not places["started"]
    retried = Job.fetch(job_ids[1], connection=conn)
    assert retried.meta["attempts"] == 1 and retried.latest_result().exc_string == "HTTP 500"


def test_retry_on_the_last_attempt_fails_the_job(conn):
    [job_id] = emit_many(conn, 1)
    jobs = store(conn)
    [claim], _, _ = jobs.claim(1)
    assert jobs.finish(claim, Outcome(RETRY, "HTTP 500", "u", 500), 1, 5) == "failed"
    assert registry_ids(conn)["failed"] == {job_id}


def test_due_retries_go_back_to_the_queue(conn):
    [job_id] = emit_many(conn, 1)
    jobs = store(conn)
    [claim], _, _ = jobs.claim(1)
    jobs.finish(claim, Outcome(RETRY, "HTTP 500", "u", 500), 10, backoff_base=0.01)
    time.sleep(0.05)
    assert jobs.promote_due() == 1
    assert registry_ids(conn)["queued"] == {job_id}
    [again], _, _ = jobs.claim(1)
    assert again.job.id == job_id and again.attempt.attempts_made == 1


def test_expired_leases_are_requeued_and_live_ones_are_not(conn):
    job_ids = emit_many(conn, 2)
    dead = store(conn, lease=0.05)
    dead.claim(1)
    alive = store(conn, lease=30)
    alive.claim(1)
    time.sleep(0.1)
    assert alive.requeue_expired() == 1  # any process hands back a dead one's jobs
    places = registry_ids(conn)
    assert places["queued"] == {job_ids[0]} and places["started"] == {job_ids[1]}
    assert Job.fetch(job_ids[0], connection=conn).get_status() == "queued"


def test_release_puts_unfinished_jobs_at_the_front_once(conn):
    job_ids = emit_many(conn, 3)
    jobs = store(conn)
    claims, _, _ = jobs.claim(2)
    jobs.finish(claims[0], Outcome(DELIVERED, "HTTP 200", "u", 200), 10, 5)
    assert jobs.release(claims) == 1  # the finished one is not put back
    assert jobs.release(claims) == 0  # nor twice
    assert notify_queue(conn).get_job_ids() == [job_ids[1], job_ids[2]]
