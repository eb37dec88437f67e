"""GET/POST /v1/settings and POST /v1/webhooks/test on a real web process."""

from __future__ import annotations

import pytest
import requests
from rq.job import Job

from shared.stores.tokens import TokenStore
from support.receiver import Receiver
from support.servers import wait_for
from support.webhooks import KEYS, counter, metric_samples, registry_ids


def test_settings_round_trip(api, env):
    initial = api("GET", "/v1/settings").json()
    assert initial == {"webhooks": "", "webhooksEnabled": False, "webhookEvents": ["*"],
                       "serviceSecret": env["SERVICE_SECRET"], "webhookErrorFlag": None}
    update = {"webhooks": "https://example.com/hook", "webhooksEnabled": True,
              "webhookEvents": ["messageNew", "messageDeleted"]}
    response = api("POST", "/v1/settings", json=update)
    assert response.status_code == 200
    assert response.json() == {"updated": ["webhookEvents", "webhooks", "webhooksEnabled"]}
    assert api("GET", "/v1/settings").json().items() >= update.items()


@pytest.mark.parametrize("field, value", [
    ("webhooks", "ftp://example.com/"),
    ("webhooks", "not a url"),
    ("webhooks", 42),
    ("webhooksEnabled", "yes"),
    ("webhookEvents", "messageNew"),
    ("webhookEvents", ["messageNew", "noSuchEvent"]),
    ("noSuchSetting", 1),
])
def test_invalid_value_is_400_naming_the_field_and_nothing_is_saved(api, field, value):
    before = api("GET", "/v1/settings").json()
    # A valid change rides along: it must not be saved either.
    body = {"webhooksEnabled": True, field: value} if field != "webhooksEnabled" else {field: value}
    response = api("POST", "/v1/settings", json=body)
    assert response.status_code == 400
    error = response.json()
    assert error["statusCode"] == 400 and error["error"] == "Bad Request"
    assert field in error["message"] and list(error["fields"]) == [field]
    assert api("GET", "/v1/settings").json() == before


def test_body_that_is_not_json_is_400(api):
    response = api("POST", "/v1/settings", data="{", headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["statusCode"] == 400


def test_settings_need_the_api_scope(web, conn):
    token = TokenStore(conn, KEYS).issue(("metrics",))
    headers = {"Authorization": f"Bearer {token}"}
    response = requests.get(web.url + "/v1/settings", headers=headers, timeout=10)
    assert response.status_code == 403
    assert requests.get(web.url + "/v1/settings", timeout=10).status_code == 401


def test_test_webhook_goes_through_the_queue_to_the_receiver(api, conn, env, spawn):
    with Receiver() as receiver:
        api("POST", "/v1/settings", json={"webhooks": receiver.url, "webhooksEnabled": True})
        response = api("POST", "/v1/webhooks/test")
        assert response.status_code == 200
        job_id = response.json()["jobId"]
        assert Job.fetch(job_id, connection=conn).func_name == "workers.webhooks.delivery.deliver"
        spawn("workers.webhooks", env)
        wait_for(lambda: job_id in registry_ids(conn)["finished"], what="the test webhook to be delivered")
    [request] = receiver.requests
    assert request.json["event"] == "test" and request.headers["X-EE-Wh-Id"] == job_id
    samples = metric_samples(env["PROMETHEUS_MULTIPROC_DIR"])
    assert counter(samples, "events", event="test") == 1  # counted by the web process that emitted it
    assert counter(samples, "webhooks", status="success", event="test") == 1
