"""/health, api_call counting and JSON errors on /v1, and surviving a Redis outage."""

import pytest
import redis
import requests

from shared.keys import Keys
from shared.stores.tokens import TokenStore
from support.scrape import parse, scrape_text, scrape_until, value
from support.servers import wait_for


@pytest.fixture
def token(conn):
    return TokenStore(conn, Keys()).issue()


def health(web):
    response = requests.get(web.url + "/health", timeout=10)
    return response.status_code, response.json()


def test_health_needs_every_worker_type(web, spawn, env):
    status, body = health(web)
    assert status == 503 and "no live imap worker" in body["problems"]
    spawn("workers.imap", env)
    spawn("workers.webhooks", env)
    wait_for(lambda: health(web)[0] == 200, what="health to turn ok")
    status, body = health(web)
    assert body["status"] == "ok" and body["workers"] == {"web": 1, "imap": 1, "webhooks": 1, "submit": 0}


def test_api_call_counts_route_templates(web, token):
    auth = {"Authorization": "Bearer " + token}
    for _ in range(2):
        assert requests.get(web.url + "/v1/stats", headers=auth, timeout=10).status_code == 200
    assert requests.post(web.url + "/v1/stats", headers=auth, timeout=10).status_code == 405
    for path in ("/v1/nope", "/v1/nope/deeper", "/v1/x?y=1"):
        response = requests.get(web.url + path, headers=auth, timeout=10)
        assert response.status_code == 404 and response.json()["statusCode"] == 404
    assert requests.get(web.url + "/v1/stats", timeout=10).status_code == 401
    for verb in ("FOOBAR1", "FOOBAR2"):  # made-up methods, no token: one bounded label value
        assert requests.request(verb, web.url + "/v1/nope", timeout=10).status_code in (404, 405)
    samples = parse(scrape_text(web.url, token))
    methods = {dict(labels)["method"] for name, labels in samples if name == "api_call"}
    assert methods == {"get", "post", "other"}
    assert value(samples, "api_call", method="get", statusCode="200", route="/v1/stats") == 2
    assert value(samples, "api_call", method="get", statusCode="401", route="/v1/stats") == 1
    assert value(samples, "api_call", method="get", statusCode="404", route="unknown") == 3
    assert value(samples, "api_call", method="post", statusCode="405", route="unknown") == 1
    assert not any(name == "api_call" and dict(labels)["route"] == "/metrics" for name, labels in samples)


def test_api_needs_api_scope(web, conn):
    metrics_only = TokenStore(conn, Keys()).issue(["metrics"])
    response = requests.get(web.url + "/v1/stats", headers={"Authorization": "Bearer " + metrics_only},
                            timeout=10)
    assert response.status_code == 403 and response.json()["error"] == "Forbidden"


def test_processes_ride_out_a_redis_outage(web, spawn, env, redis_server, token):
    worker = spawn("workers.webhooks", env)
    wait_for(lambda: "started" in worker.output(), what="worker start")
    redis_server.stop()
    status, body = health(web)
    assert status == 503 and "Redis unavailable" in body["problems"][0]
    assert requests.get(web.url + "/metrics", headers={"Authorization": "Bearer " + token},
                        timeout=10).status_code == 503
    wait_for(lambda: "Redis unavailable, retrying" in worker.output(), what="the worker to notice")
    redis_server.start()  # empty: the outage lost the data, as with a Redis without persistence
    TokenStore(redis.Redis(port=redis_server.port), Keys()).install(token, ("*",), "again")
    wait_for(lambda: "Redis is back" in worker.output(), what="the worker to recover")
    assert worker.proc.poll() is None and web.proc.poll() is None
    # Each loop finds Redis back at its next try; the heartbeat may be the last of them.
    scrape_until(web.url, token, lambda s: value(s, "threads", type="webhooks", recent="yes") == 1,
                 "the worker's heartbeat in the emptied Redis")
