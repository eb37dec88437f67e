"""Redis refusing, not gone: MISCONF (a save that failed), OOM (maxmemory), NOPERM (an ACL), and
Redis gone for a while. The web process keeps answering /metrics, the workers keep running and
lose nothing, /health names the kind, every error is counted by kind, and everything works again
once the cause is removed."""

from __future__ import annotations

import time

import pytest
import requests

from shared.keys import Keys
from shared.runtime.heartbeats import Heartbeats
from shared.stores.tokens import TokenStore
from support.faulty_redis import FaultyRedis
from support.receiver import Receiver
from support.scrape import parse, scrape_text, scrape_until, value
from support.servers import base_env, start_web, wait_for
from support.webhooks import KEYS, emit_many, enable_webhooks, registry_ids

REFUSALS = {"misconf": (FaultyRedis.misconf, FaultyRedis.cure_misconf),
            "oom": (FaultyRedis.oom, FaultyRedis.cure_oom)}


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    server = FaultyRedis(tmp_path_factory.mktemp("faulty"))
    server.start()
    yield server
    server.close()


@pytest.fixture
def faulty_env(faulty, tmp_path):
    if faulty.proc.poll() is not None:  # a test stopped it
        faulty.start()
    faulty.reset()
    return base_env(faulty.url, tmp_path)


def health(web) -> tuple[int, dict]:
    response = requests.get(web.url + "/health", timeout=10)
    return response.status_code, response.json()


def failing_loops(output: str, kind: str) -> list[str]:
    """What logged that it met `kind`, once per line that said so (e.g. "heartbeat")."""
    marker = f": Redis unavailable, retrying with backoff ({kind})"
    return [line.split(": ", 1)[1].split(marker)[0] for line in output.splitlines() if marker in line]


def errors(samples: dict, process: str, kind: str) -> float:
    return value(samples, "mailpulse_redis_errors_total", process=process, kind=kind) or 0


@pytest.mark.parametrize("kind", sorted(REFUSALS))
def test_web_answers_while_redis_refuses_writes(kind, faulty, faulty_env, spawn):
    web = start_web(spawn, faulty_env)
    token = TokenStore(faulty.client, Keys()).issue(["*"])
    scrape_until(web.url, token, lambda s: value(s, "thread_starts") == 1, "the web process to show")
    refuse, cure = REFUSALS[kind]
    refuse(faulty)
    try:
        samples = parse(scrape_text(web.url, token))  # auth reads; its last-use write is refused
        assert value(samples, "thread_starts") == 1 and value(samples, "redis_uptime_in_seconds") is not None
        assert value(samples, "queue_size", queue="notify", state="waiting") == 0
        status, body = health(web)
        assert status == 503 and f"Redis unavailable ({kind})" in body["problems"]
        assert "127.0.0.1" not in str(body) and str(faulty.port) not in str(body)  # unauthenticated
        refused = requests.post(web.url + "/v1/webhooks/test", headers={"Authorization": f"Bearer {token}"},
                                timeout=10)
        assert refused.status_code == 503 and f"({kind})" in refused.json()["message"]
        scrape_until(web.url, token, lambda s: errors(s, "web", kind) >= 2
                     and value(s, "mailpulse_redis_failing", process="web", kind=kind) == 1,
                     "the errors counted, and the heartbeat loop's failing flag")
        for _ in range(3):
            assert requests.get(web.url + "/health", timeout=10).status_code == 503
        # Logged once per kind and loop (requests, heartbeat, ...), not once per request.
        loops = failing_loops(web.output(), kind)
        assert loops and len(loops) == len(set(loops)), loops
    finally:
        cure(faulty)
    wait_for(lambda: f"({kind})" not in str(health(web)[1]), what="/health to stop naming it")
    accepted = requests.post(web.url + "/v1/webhooks/test", headers={"Authorization": f"Bearer {token}"},
                             timeout=10)
    assert accepted.status_code == 200
    samples = scrape_until(web.url, token, lambda s: value(s, "mailpulse_redis_failing", process="web",
                                                           kind=kind) == 0, "the failing flag cleared")
    assert "works again, Redis is back" in web.output()


def test_an_acl_without_info_and_slowlog_leaves_out_only_those_families(faulty, faulty_env, spawn, tmp_path):
    web = start_web(spawn, base_env(faulty.user_url(), tmp_path))
    token = TokenStore(faulty.client, Keys()).issue(["metrics"])
    scrape_until(web.url, token, lambda s: value(s, "thread_starts") == 1, "the web process to show")
    faulty.forbid("info", "slowlog")
    samples = parse(scrape_text(web.url, token))
    assert value(samples, "redis_uptime_in_seconds") is None
    assert value(samples, "redis_slowlog_length") is None
    assert value(samples, "redis_latency") > 0 and value(samples, "thread_starts") == 1
    assert value(samples, "queue_size", queue="notify", state="waiting") == 0
    samples = parse(scrape_text(web.url, token))
    for collector in ("redis_info", "redis_slowlog"):
        assert value(samples, "mailpulse_scrape_errors_total", collector=collector) >= 1
    assert errors(samples, "web", "noperm") >= 2
    assert sorted(failing_loops(web.output(), "noperm")) == [
        "/metrics collector redis_info", "/metrics collector redis_slowlog"]
    faulty.allow("info", "slowlog")
    samples = parse(scrape_text(web.url, token))
    assert value(samples, "redis_uptime_in_seconds") > 0
    assert value(samples, "redis_slowlog_length") is not None


def test_metrics_answer_while_redis_is_gone(faulty, faulty_env, spawn):
    web = start_web(spawn, faulty_env)
    store = TokenStore(faulty.client, Keys())
    known, unverified = store.issue(["metrics"]), store.issue(["metrics"])
    scrape_until(web.url, known, lambda s: value(s, "thread_starts") == 1, "the web process to show")
    faulty.stop()
    try:
        # A token this process verified lately still opens /metrics: the process metrics, no Redis.
        samples = parse(scrape_text(web.url, known))
        assert value(samples, "thread_starts") == 1 and value(samples, "redis_uptime_in_seconds") is None
        samples = parse(scrape_text(web.url, known))
        assert value(samples, "mailpulse_scrape_errors_total", collector="redis_info") >= 1
        denied = requests.get(web.url + "/metrics", headers={"Authorization": f"Bearer {unverified}"},
                              timeout=30)
        assert denied.status_code == 503  # cannot be checked: not turned away as unknown either
    finally:
        faulty.start()
    store = TokenStore(faulty.client, Keys())  # the restarted Redis is empty (no persistence here)
    store.install(known, ("metrics",), "again")
    samples = parse(scrape_text(web.url, known))
    assert value(samples, "redis_uptime_in_seconds") is not None  # the Redis families are back


WORKER_REFUSALS = {
    "misconf": (FaultyRedis.misconf, FaultyRedis.cure_misconf),
    "oom": (FaultyRedis.oom, FaultyRedis.cure_oom),
    # Every Lua script: the webhooks claim and record, the IMAP lease renewal and balancing.
    "noperm": (lambda r: r.forbid("evalsha", "eval"), lambda r: r.allow("evalsha", "eval")),
}


def received_jobs(receiver: Receiver) -> set[str]:
    with receiver.lock:
        return {r.headers["X-EE-Wh-Id"] for r in receiver.requests}


@pytest.mark.parametrize("kind", sorted(WORKER_REFUSALS))
def test_workers_ride_out_refusals(kind, faulty, faulty_env, spawn, tmp_path):
    env = dict(faulty_env, REDIS_URL=faulty.user_url())  # the ACL user: every command until forbidden
    web = start_web(spawn, env)
    workers = {"imap": spawn("workers.imap", env), "webhooks": spawn("workers.webhooks", env)}
    heartbeats = Heartbeats(faulty.client, KEYS)
    refuse, cure = WORKER_REFUSALS[kind]
    with Receiver(latency=1.0) as receiver:  # deliveries in flight as the refusal starts
        enable_webhooks(faulty.client, receiver.url)
        wait_for(lambda: len(heartbeats.workers()) == 3, what="three processes beating")
        queued = set(emit_many(faulty.client, 20))
        refuse(faulty)
        try:
            marker = f"Redis unavailable, retrying with backoff ({kind})"
            wait_for(lambda: all(marker in w.output() for w in workers.values()),
                     what=f"both workers to meet {kind}")
            time.sleep(2)  # several rounds of every loop against the refusing Redis
            assert all(w.proc.poll() is None for w in workers.values()), \
                {t: w.output()[-2000:] for t, w in workers.items()}
            status, body = health(web)
            assert status == 503 and set(body["redisErrors"][kind]) >= {"imap", "webhooks"}, body
            assert f"Redis errors ({kind}) in " in " ".join(body["problems"])
        finally:
            cure(faulty)
        # Nothing queued is lost: every job reaches the receiver, and the queue drains by itself.
        wait_for(lambda: received_jobs(receiver) >= queued, timeout=60, what="every queued event delivered")
        later = set(emit_many(faulty.client, 3))
        wait_for(lambda: received_jobs(receiver) >= later, what="new events delivered after the cure")
    finished = lambda: registry_ids(faulty.client)["finished"] >= queued | later  # noqa: E731
    wait_for(finished, timeout=60, what="every job recorded as finished")
    wait_for(lambda: health(web)[0] == 200, timeout=60, what="/health healthy again")
    assert all(w.proc.poll() is None for w in workers.values())
    for process, worker in workers.items():
        assert "works again, Redis is back" in worker.output(), process
        assert "Traceback" not in worker.output(), worker.output()[-3000:]
