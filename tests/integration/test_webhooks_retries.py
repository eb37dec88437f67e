"""Failures: retries with backoff, the last failure in rq's failed registry, the error flag."""

from __future__ import annotations

import json

from rq.job import Job

from shared.stores.settings import SettingsStore
from shared.stores.tokens import TokenStore
from support.receiver import Receiver
from support.scrape import parse, scrape_text
from support.servers import wait_for
from support.webhooks import KEYS, counter, emit_many, enable_webhooks, metric_samples, registry_ids


def fail_first_attempt(request):
    return 500 if request.headers["X-EE-Wh-Attempts-Made"] == "0" else 200


def test_500_then_success_counts_every_attempt(conn, env, spawn, web):
    env.update(WEBHOOK_BACKOFF="0.2")
    with Receiver(respond=fail_first_attempt) as receiver:
        enable_webhooks(conn, receiver.url)
        [job_id] = emit_many(conn, 1)
        spawn("workers.webhooks", env)
        wait_for(lambda: job_id in registry_ids(conn)["finished"], what="the retried job to finish")

    assert [r.headers["X-EE-Wh-Attempts-Made"] for r in receiver.requests] == ["0", "1"]
    assert len({r.headers["X-EE-Wh-Event-Id"] for r in receiver.requests}) == 1  # same event, twice
    assert receiver.requests[0].body == receiver.requests[1].body
    token = TokenStore(conn, KEYS).issue(("metrics",))
    metrics = parse(scrape_text(web.url, token))  # the real web process's /metrics, of every process
    assert metrics[("webhooks", (("event", "messageNew"), ("status", "fail")))] == 1
    assert metrics[("webhooks", (("event", "messageNew"), ("status", "success")))] == 1
    assert metrics[("queues_processed", (("queue", "notify"), ("status", "failed")))] == 1
    assert metrics[("queues_processed", (("queue", "notify"), ("status", "completed")))] == 1
    assert metrics[("webhook_req_count", ())] == 2
    assert metrics[("queue_size", (("queue", "notify"), ("state", "completed")))] == 1
    assert metrics[("queue_size", (("queue", "notify"), ("state", "failed")))] == 0


def test_a_failed_attempt_waits_in_the_scheduled_registry(conn, env, spawn):
    env.update(WEBHOOK_BACKOFF="600")
    with Receiver(respond=lambda r: 503) as receiver:
        enable_webhooks(conn, receiver.url)
        [job_id] = emit_many(conn, 1)
        spawn("workers.webhooks", env)
        wait_for(lambda: job_id in registry_ids(conn)["scheduled"], what="the job to wait for its retry")
    assert Job.fetch(job_id, connection=conn).get_status() == "scheduled"
    retry_at = conn.zscore(f"rq:scheduled:{KEYS.queue('notify')}", job_id)
    assert retry_at - receiver.requests[0].at > 600 * 0.8 - 1  # first retry after about the base delay
    assert len(receiver.requests) == 1


def test_last_failure_goes_to_failed_registry_and_sets_the_error_flag(conn, env, spawn):
    env.update(WEBHOOK_BACKOFF="0.1", WEBHOOK_ATTEMPTS="3")
    healthy = False
    with Receiver(respond=lambda r: 200 if healthy else 500) as receiver:
        enable_webhooks(conn, receiver.url)
        [job_id] = emit_many(conn, 1)
        spawn("workers.webhooks", env)
        wait_for(lambda: job_id in registry_ids(conn)["failed"], what="the job to fail")
        assert len(receiver.requests) == 3
        job = Job.fetch(job_id, connection=conn)
        assert job.get_status() == "failed"
        assert "HTTP 500" in job.latest_result().exc_string
        flag = SettingsStore(conn, KEYS).webhook_error()
        assert flag["event"] == "messageNew" and flag["statusCode"] == 500 and flag["url"] == receiver.url
        assert "HTTP 500" in flag["message"] and isinstance(flag["time"], int)

        healthy = True
        [next_job] = emit_many(conn, 1)
        wait_for(lambda: next_job in registry_ids(conn)["finished"], what="the next job to finish")
        assert SettingsStore(conn, KEYS).webhook_error() is None  # a success clears the flag

    samples = metric_samples(env["PROMETHEUS_MULTIPROC_DIR"])
    assert counter(samples, "webhooks", status="fail", event="messageNew") == 3
    assert counter(samples, "queues_processed", queue="notify", status="failed") == 3


def test_timeout_is_a_failed_attempt(conn, env, spawn):
    env.update(WEBHOOK_TIMEOUT="0.3", WEBHOOK_ATTEMPTS="1")
    with Receiver(latency=3) as receiver:
        enable_webhooks(conn, receiver.url)
        [job_id] = emit_many(conn, 1)
        spawn("workers.webhooks", env)
        wait_for(lambda: job_id in registry_ids(conn)["failed"], what="the job to fail")
    flag = SettingsStore(conn, KEYS).webhook_error()
    assert flag["statusCode"] is None
    assert "timed out" in flag["message"] or "no answer within" in flag["message"]
    assert len(receiver.requests) == 1


def test_redirect_is_not_followed_and_is_a_failure(conn, env, spawn):
    env.update(WEBHOOK_ATTEMPTS="1")

    def redirect(request):
        return (302, {"Location": "/elsewhere"}) if request.path == "/hook" else 200

    with Receiver(respond=redirect) as receiver:
        enable_webhooks(conn, receiver.url + "/hook")
        [job_id] = emit_many(conn, 1)
        spawn("workers.webhooks", env)
        wait_for(lambda: job_id in registry_ids(conn)["failed"], what="the job to fail")
    assert [r.path for r in receiver.requests] == ["/hook"]
    assert SettingsStore(conn, KEYS).webhook_error()["statusCode"] == 302


def test_link_local_target_is_refused_at_once_without_retry(conn, env, spawn):
    env.update(WEBHOOK_BACKOFF="0.1")  # 10 attempts allowed: none may be used on a refused target
    enable_webhooks(conn, "http://169.254.169.254/latest/meta-data/")
    [job_id] = emit_many(conn, 1)
    spawn("workers.webhooks", env)
    wait_for(lambda: job_id in registry_ids(conn)["failed"], what="the job to fail")
    job = Job.fetch(job_id, connection=conn)
    assert job.meta["attempts"] == 1
    assert "egress policy" in job.latest_result().exc_string
    samples = metric_samples(env["PROMETHEUS_MULTIPROC_DIR"])
    assert counter(samples, "webhooks", status="fail", event="messageNew") == 1
    assert samples.get(("webhook_req_count", ()), 0) == 0  # no request was made
    assert json.loads(conn.get(KEYS.webhook_error))["url"].startswith("http://169.254.169.254/")
