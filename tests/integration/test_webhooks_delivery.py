"""Deliveries by a real webhooks process to real receivers on loopback."""

from __future__ import annotations

import base64
import hashlib
import hmac

from shared import __version__
from shared.stores.settings import SettingsStore
from support.receiver import Receiver
from support.servers import wait_for
from support.webhooks import KEYS, counter, emit_many, enable_webhooks, metric_samples, registry_ids


def expected_signature(secret: str, body: bytes) -> str:
    # Written out here rather than imported, so that the test checks the documented recipe.
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_delivers_signed_post_with_headers(conn, env, spawn):
    with Receiver() as receiver:
        enable_webhooks(conn, receiver.url + "/hook")
        [job_id] = emit_many(conn, 1)
        spawn("workers.webhooks", env)
        wait_for(lambda: job_id in registry_ids(conn)["finished"], what="the job to finish")

    [request] = receiver.requests
    assert request.path == "/hook"
    headers = request.headers
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == f"mailpulse/{__version__}"
    assert headers["X-EE-Wh-Id"] == job_id
    assert headers["X-EE-Wh-Attempts-Made"] == "0"
    assert float(headers["X-EE-Wh-Queued-Time"]) >= 0
    assert len(headers["X-EE-Wh-Event-Id"]) == 32
    assert headers["X-EE-Wh-Signature"] == expected_signature(env["SERVICE_SECRET"], request.body)
    assert "=" not in headers["X-EE-Wh-Signature"]
    payload = request.json
    assert payload["event"] == "messageNew" and payload["account"] == "acc1" and payload["data"] == {"n": 0}
    samples = metric_samples(env["PROMETHEUS_MULTIPROC_DIR"])
    assert counter(samples, "webhooks", status="success", event="messageNew") == 1
    assert counter(samples, "queues_processed", queue="notify", status="completed") == 1
    assert samples[("webhook_req_count", ())] == 1


def test_account_webhook_url_overrides_the_global_one(conn, env, spawn):
    with Receiver() as receiver:
        enable_webhooks(conn, receiver.url + "/global")
        conn.hset(KEYS.account("acc2"), mapping={"webhooks": receiver.url + "/acc2"})
        emit_many(conn, 1, account="acc1")
        emit_many(conn, 1, account="acc2")
        spawn("workers.webhooks", env)
        wait_for(lambda: len(registry_ids(conn)["finished"]) == 2, what="both jobs to finish")

    paths = {r.json["account"]: r.path for r in receiver.requests}
    assert paths == {"acc1": "/global", "acc2": "/acc2"}


def test_filtered_and_disabled_events_finish_without_a_request(conn, env, spawn):
    with Receiver() as receiver:
        store = SettingsStore(conn, KEYS)
        store.update({"webhooks": receiver.url, "webhooksEnabled": True, "webhookEvents": ["messageNew"]})
        [wanted] = emit_many(conn, 1, event="messageNew")
        [unwanted] = emit_many(conn, 1, event="messageDeleted")
        spawn("workers.webhooks", env)
        wait_for(lambda: {wanted, unwanted} <= registry_ids(conn)["finished"], what="both jobs to finish")
        assert [r.json["event"] for r in receiver.requests] == ["messageNew"]

        store.update({"webhooksEnabled": False, "webhookEvents": ["*"]})
        [while_disabled] = emit_many(conn, 1)
        wait_for(lambda: while_disabled in registry_ids(conn)["finished"], what="the job to finish")

    assert len(receiver.requests) == 1
    samples = metric_samples(env["PROMETHEUS_MULTIPROC_DIR"])
    assert counter(samples, "queues_processed", queue="notify", status="completed") == 3
    assert counter(samples, "webhooks", status="success", event="messageDeleted") == 0
    assert samples[("webhook_req_count", ())] == 1


def test_no_url_set_completes_without_a_request(conn, env, spawn):
    SettingsStore(conn, KEYS).update({"webhooksEnabled": True})
    [job_id] = emit_many(conn, 1)
    spawn("workers.webhooks", env)
    wait_for(lambda: job_id in registry_ids(conn)["finished"], what="the job to finish")
