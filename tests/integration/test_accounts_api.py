"""The accounts API on a real web process and a real Redis: shapes, validation, events, secrecy."""

from __future__ import annotations

import json
import time

import pytest
from rq.job import Job

from shared.stores.accounts import AccountStore
from shared.stores.credentials import CredentialsUnreadable
from support.webhooks import KEYS, counter, metric_samples, notify_queue

PASSWORD = "s3cret-Passw0rd"


def body(account="acc1", **overrides):
    data = {"account": account, "name": "Ann Example", "email": "ann@example.com",
            "imap": {"host": "127.0.0.1", "port": 1143, "secure": False,
                     "auth": {"user": "ann", "pass": PASSWORD}}}
    data.update(overrides)
    return data


def emitted(conn) -> list[tuple[str, str]]:
    jobs = [Job.fetch(i, connection=conn) for i in notify_queue(conn).get_job_ids()]
    return [(job.meta["event"], job.args[0]["account"]) for job in jobs]


def test_create_read_and_the_password_never_leaves(api, conn, env):
    response = api("POST", "/v1/account", json=body())
    assert response.status_code == 200 and response.json() == {"account": "acc1", "state": "new"}
    got = api("GET", "/v1/account/acc1")
    assert got.status_code == 200
    account = got.json()
    assert account["name"] == "Ann Example" and account["email"] == "ann@example.com"
    assert account["imap"] == {"host": "127.0.0.1", "port": 1143, "secure": False, "auth": {"user": "ann"}}
    assert account["state"] == "init" and account["lastError"] is None
    assert PASSWORD not in got.text and PASSWORD not in api("GET", "/v1/accounts").text
    stored = b"".join(k + v for k, v in conn.hgetall(KEYS.account("acc1")).items())
    assert PASSWORD.encode() not in stored  # encrypted at rest
    store = AccountStore(conn, KEYS, env["SERVICE_SECRET"])
    assert store.imap_settings("acc1").password == PASSWORD
    assert PASSWORD not in repr(store.imap_settings("acc1"))
    assert emitted(conn) == [("accountAdded", "acc1")]
    with pytest.raises(CredentialsUnreadable):
        AccountStore(conn, KEYS, "another secret").imap_settings("acc1")


def test_duplicate_id_is_409_and_changes_nothing(api, conn):
    assert api("POST", "/v1/account", json=body()).status_code == 200
    response = api("POST", "/v1/account", json=body(name="Someone Else"))
    assert response.status_code == 409 and "already exists" in response.json()["message"]
    assert api("GET", "/v1/account/acc1").json()["name"] == "Ann Example"
    assert emitted(conn) == [("accountAdded", "acc1")]


@pytest.mark.parametrize("field, overrides", [
    ("account", {"account": "bad id/with slash"}),
    ("account", {"account": 12}),
    ("name", {"name": ""}),
    ("email", {"email": "not-an-address"}),
    ("webhooks", {"webhooks": "ftp://example.com/"}),
    ("imap", {"imap": "imap.example.com"}),
    ("imap.port", {"imap": {"host": "h", "port": 70000, "auth": {"user": "u", "pass": "p"}}}),
    ("imap.port", {"imap": {"host": "h", "port": "993", "auth": {"user": "u", "pass": "p"}}}),
    ("imap.host", {"imap": {"port": 993, "auth": {"user": "u", "pass": "p"}}}),
    ("imap.secure", {"imap": {"host": "h", "port": 993, "secure": "yes",
                              "auth": {"user": "u", "pass": "p"}}}),
    ("imap.auth.pass", {"imap": {"host": "h", "port": 993, "auth": {"user": "u"}}}),
    ("imap.auth", {"imap": {"host": "h", "port": 993}}),
    ("colour", {"colour": "blue"}),
])
def test_invalid_input_is_400_naming_the_field_and_nothing_is_saved(api, conn, field, overrides):
    response = api("POST", "/v1/account", json=body(**overrides))
    assert response.status_code == 400
    error = response.json()
    assert error["statusCode"] == 400 and field in error["fields"] and field in error["message"]
    assert api("GET", "/v1/accounts").json()["total"] == 0 and emitted(conn) == []


def test_body_that_is_not_an_object_is_400(api):
    response = api("POST", "/v1/account", data="[1]", headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and "body" in response.json()["fields"]


def test_list_is_paged_in_creation_order(api):
    for n in range(5):
        assert api("POST", "/v1/account", json=body(f"acc{n}")).status_code == 200
    page = api("GET", "/v1/accounts?page=1&pageSize=2").json()
    assert page["total"] == 5 and page["page"] == 1 and page["pages"] == 3
    assert [a["account"] for a in page["accounts"]] == ["acc2", "acc3"]
    assert set(page["accounts"][0]) == {"account", "name", "email", "state", "lastError"}
    bad = api("GET", "/v1/accounts?pageSize=0")
    assert bad.status_code == 400 and list(bad.json()["fields"]) == ["pageSize"]


def test_update_keeps_the_password_unless_given(api, conn, env):
    api("POST", "/v1/account", json=body())
    response = api("PUT", "/v1/account/acc1", json={"name": "Ann B", "imap": {"port": 1993}})
    assert response.status_code == 200 and response.json() == {"account": "acc1"}
    account = api("GET", "/v1/account/acc1").json()
    assert account["name"] == "Ann B" and account["imap"]["port"] == 1993
    settings = AccountStore(conn, KEYS, env["SERVICE_SECRET"]).imap_settings("acc1")
    assert (settings.host, settings.port, settings.user) == ("127.0.0.1", 1993, "ann")
    assert settings.password == PASSWORD
    api("PUT", "/v1/account/acc1", json={"imap": {"auth": {"pass": "new-pass"}}})
    assert AccountStore(conn, KEYS, env["SERVICE_SECRET"]).imap_settings("acc1").password == "new-pass"
    assert api("PUT", "/v1/account/acc1", json={"imap": {"port": 0}}).json()["fields"] == {
        "imap.port": "must be a port number from 1 to 65535"}
    assert api("PUT", "/v1/account/nobody", json={"name": "x"}).status_code == 404


def test_delete_removes_the_record_and_its_sync_state_only(api, conn):
    api("POST", "/v1/account", json=body("acc1"))
    api("POST", "/v1/account", json=body("acc10"))
    def sync_state(account):  # as the IMAP worker writes it (workers/imap/syncstate.py)
        conn.hset(KEYS.account_mailboxes(account), mapping={"INBOX": "{}", "Lists/Python": "{}"})
        for path in ("INBOX", "Lists/Python"):
            conn.hset(KEYS.account_flags(account, path), "1", "\\Seen")
            conn.zadd(KEYS.account_index(account, path), {"1": 1})
        conn.hset(KEYS.account_status(account), "initialized", "1")
        return KEYS.account_keys(account, ["INBOX", "Lists/Python"])

    acc1, acc10 = sync_state("acc1"), sync_state("acc10")
    response = api("DELETE", "/v1/account/acc1")
    assert response.status_code == 200 and response.json() == {"account": "acc1", "deleted": True}
    assert api("GET", "/v1/account/acc1").status_code == 404
    assert api("DELETE", "/v1/account/acc1").status_code == 404
    assert conn.exists(*acc1) == 0
    assert conn.exists(*acc10) == len(acc10) - 1  # all but the lease (no IMAP process holds it)
    assert emitted(conn)[-1] == ("accountDeleted", "acc1")


def test_changes_are_published_for_the_imap_workers(api, conn):
    pubsub = conn.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(KEYS.account_changes)
    api("POST", "/v1/account", json=body())
    api("PUT", "/v1/account/acc1", json={"name": "Ann B"})
    assert api("PUT", "/v1/account/acc1/reconnect").json() == {"reconnect": True}
    assert api("PUT", "/v1/account/nobody/reconnect").status_code == 404
    api("DELETE", "/v1/account/acc1")
    messages, deadline = [], time.monotonic() + 10
    while len(messages) < 4 and time.monotonic() < deadline:
        message = pubsub.get_message(timeout=1)  # None also for the (ignored) subscribe reply
        if message is not None:
            messages.append(json.loads(message["data"]))
    assert [m["action"] for m in messages] == ["added", "updated", "reconnect", "deleted"]
    assert {m["account"] for m in messages} == {"acc1"}
    pubsub.close()


def test_account_routes_are_counted_by_template(api, env):
    api("POST", "/v1/account", json=body())
    api("GET", "/v1/account/acc1")
    api("GET", "/v1/account/nobody")
    samples = metric_samples(env["PROMETHEUS_MULTIPROC_DIR"])
    assert counter(samples, "api_call", method="get", statusCode="200", route="/v1/account/{account}") == 1
    assert counter(samples, "api_call", method="get", statusCode="404", route="/v1/account/{account}") == 1
    assert counter(samples, "events", event="accountAdded") == 1


@pytest.mark.parametrize("path", ["acc1:lease", "acc1:status", "acc1:uids:INBOX", "..", "a b"])
def test_ids_that_cannot_name_an_account_are_404_and_touch_nothing(api, conn, path):
    api("POST", "/v1/account", json=body())
    sync_state = KEYS.account("acc1") + ":status"
    conn.hset(sync_state, "initialized", "1")
    for method in ("GET", "PUT", "DELETE"):
        response = api(method, f"/v1/account/{path}", json={"name": "x"})
        assert response.status_code == 404, (method, response.text)
    assert api("PUT", f"/v1/account/{path}/reconnect").status_code == 404
    assert conn.hget(sync_state, "initialized") == b"1"


def test_page_must_be_an_ascii_number(api):
    response = api("GET", "/v1/accounts?page=\u00b2")
    assert response.status_code == 400 and list(response.json()["fields"]) == ["page"]


def test_password_is_kept_exactly_as_given(api, conn, env):
    api("POST", "/v1/account", json=body(imap={"host": "h", "port": 143,
                                               "auth": {"user": "ann", "pass": "  spaced pass "}}))
    assert AccountStore(conn, KEYS, env["SERVICE_SECRET"]).imap_settings("acc1").password == "  spaced pass "


def test_writes_after_a_delete_leave_no_orphan_record(api, conn, env):
    api("POST", "/v1/account", json=body())
    store = AccountStore(conn, KEYS, env["SERVICE_SECRET"])
    raw = conn.hgetall(KEYS.account("acc1"))
    api("DELETE", "/v1/account/acc1")
    store.set_state("acc1", "connected", {"response": "late", "serverResponseCode": ""})
    assert store._change("acc1", {b.decode(): v for b, v in raw.items()}) is False  # an update's write
    assert not conn.exists(KEYS.account("acc1"))
