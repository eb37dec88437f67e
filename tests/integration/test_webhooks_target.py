"""The target of an event is fixed when it is emitted: deleting an account or changing settings
never sends its queued or retrying events to another receiver (real web, webhooks, receivers)."""

from __future__ import annotations

from shared.events import emit
from shared.stores.settings import SettingsStore
from support.receiver import Receiver
from support.servers import wait_for
from support.webhooks import KEYS, enable_webhooks, registry_ids


def account_body(account_id: str, url: str | None) -> dict:
    body = {"account": account_id, "name": account_id, "email": f"{account_id}@example.com"}
    if url:
        body["webhooks"] = url
    return body


def test_deleted_accounts_events_reach_its_own_url_or_nobody(api, conn, env, spawn):
    failing = {"on": True}  # the tenant's receiver fails at first: its events wait for retries

    def tenant_answer(request):
        return 500 if failing["on"] else 200

    env.update(WEBHOOK_BACKOFF="0.5", WEBHOOK_ATTEMPTS="20")
    with Receiver() as shared_receiver, Receiver(respond=tenant_answer) as tenant:
        enable_webhooks(conn, shared_receiver.url + "/global")
        assert api("POST", "/v1/account", json=account_body("x", tenant.url + "/x")).status_code == 200
        assert api("POST", "/v1/account", json=account_body("plain", None)).status_code == 200
        retrying = [emit(conn, KEYS, "messageNew", account="x", data={"subject": f"secret {i}"})
                    for i in range(3)]
        spawn("workers.webhooks", env)
        wait_for(lambda: set(retrying) <= registry_ids(conn)["scheduled"] | registry_ids(conn)["queued"]
                 and len(tenant.requests) >= 3, what="x's events to be retrying")
        queued_later = emit(conn, KEYS, "messageNew", account="x", data={"subject": "queued"})

        assert api("DELETE", "/v1/account/x").status_code == 200
        # An IMAP session still running for x a moment after the delete: its event goes nowhere.
        after_delete = emit(conn, KEYS, "messageNew", account="x", data={"subject": "late"})
        # Settings change meanwhile: the queued events keep their target.
        SettingsStore(conn, KEYS).update({"webhooks": shared_receiver.url + "/changed"})
        failing["on"] = False
        wait_for(lambda: set(retrying) | {queued_later, after_delete} <= registry_ids(conn)["finished"]
                 and any(r.json["event"] == "accountDeleted" for r in tenant.requests),
                 timeout=60, what="x's events to be delivered to x's own URL")
        emit(conn, KEYS, "messageNew", account="plain", data={"subject": "control"})
        wait_for(lambda: any(r.json["account"] == "plain" and r.json["event"] == "messageNew"
                             for r in shared_receiver.requests), what="the control event")

    assert all(r.path == "/x" for r in tenant.requests)
    delivered_to_x = {r.json["data"].get("subject") for r in tenant.requests
                      if r.json["event"] == "messageNew"}
    assert delivered_to_x == {"secret 0", "secret 1", "secret 2", "queued"}
    # Nothing of x reached the shared receiver: not its mail, not its accountDeleted, not the late one.
    assert [r.json["account"] for r in shared_receiver.requests if r.json["account"] == "x"] == []
    paths = {(r.json["account"], r.json["event"]): r.path for r in shared_receiver.requests}
    assert paths[("plain", "accountAdded")] == "/global"
    assert paths[("plain", "messageNew")] == "/changed"  # emitted after the change: the new URL


def test_an_accounts_own_url_is_fixed_when_the_event_is_emitted(conn, env, spawn):
    with Receiver() as receiver:
        enable_webhooks(conn, receiver.url + "/global")
        conn.hset(KEYS.account("acc"), mapping={"webhooks": receiver.url + "/first"})
        [first] = [emit(conn, KEYS, "messageNew", account="acc")]
        conn.hset(KEYS.account("acc"), mapping={"webhooks": receiver.url + "/second"})
        [second] = [emit(conn, KEYS, "messageNew", account="acc")]
        spawn("workers.webhooks", env)
        wait_for(lambda: {first, second} <= registry_ids(conn)["finished"], what="both jobs")

    assert sorted(r.path for r in receiver.requests) == ["/first", "/second"]


def test_url_user_info_becomes_basic_auth_and_is_never_shown(conn, env, spawn):
    import base64

    from rq.job import Job

    with Receiver(respond=lambda request: 500) as receiver:
        url = receiver.url.replace("http://", "http://tenant%40x:s3cret%21@") + "/hook"
        enable_webhooks(conn, url)
        env.update(WEBHOOK_ATTEMPTS="1")
        [job_id] = [emit(conn, KEYS, "messageNew", account="acc")]
        log = spawn("workers.webhooks", env)
        wait_for(lambda: job_id in registry_ids(conn)["failed"], what="the job to fail")

    [request] = receiver.requests
    assert request.path == "/hook"
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"tenant@x:s3cret!").decode()
    flag = SettingsStore(conn, KEYS).webhook_error()
    assert flag["url"] == receiver.url + "/hook"  # shown without its credentials
    assert "s3cret" not in Job.fetch(job_id, connection=conn).latest_result().exc_string
    assert "s3cret" not in log.log_path.read_text()


def test_private_targets_denied_when_configured(conn, env, spawn):
    with Receiver() as receiver:
        enable_webhooks(conn, receiver.url + "/hook")  # 127.0.0.1: loopback
        env.update(WEBHOOK_PRIVATE_TARGETS="deny")
        [refused] = [emit(conn, KEYS, "messageNew", account="acc")]
        spawn("workers.webhooks", env)
        wait_for(lambda: refused in registry_ids(conn)["failed"], what="the job to be refused")
        assert receiver.requests == []  # refused before connecting: no retry either
        flag = SettingsStore(conn, KEYS).webhook_error()
        assert "WEBHOOK_PRIVATE_TARGETS=deny" in flag["message"] and "127.0.0.1" in flag["message"]


def test_private_targets_allowed_by_default(conn, env, spawn):
    with Receiver() as receiver:
        enable_webhooks(conn, receiver.url + "/hook")
        [delivered] = [emit(conn, KEYS, "messageNew", account="acc")]
        spawn("workers.webhooks", env)
        wait_for(lambda: delivered in registry_ids(conn)["finished"], what="the job to be delivered")
    assert len(receiver.requests) == 1
