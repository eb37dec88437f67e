"""The sending API on a real web process: account SMTP settings, submit's 400s and 404s, the
outbox, /health with accounts that send, and the submit queue and workers in /metrics."""

from __future__ import annotations

import base64
import time

import pytest
import requests

from shared.keys import Keys
from shared.stores.tokens import TokenStore
from support.imap import store
from support.scrape import parse, scrape_text
from support.servers import start_web, wait_for

SMTP = {"host": "127.0.0.1", "port": 2525, "secure": False, "auth": {"user": "ann", "pass": "smtp-secret"}}


@pytest.fixture
def ann(api):
    answer = api("POST", "/v1/account", json={"account": "ann", "name": "Ann", "email": "ann@example.test",
                                              "smtp": SMTP})
    assert answer.status_code == 200, answer.text
    return "ann"


def fields(answer) -> dict:
    assert answer.status_code == 400, answer.text
    return answer.json()["fields"]


def test_smtp_settings_are_stored_encrypted_and_never_returned(ann, api, conn):
    shown = api("GET", "/v1/account/ann").json()
    assert shown["smtp"] == {"host": "127.0.0.1", "port": 2525, "secure": False, "auth": {"user": "ann"}}
    raw = conn.hgetall(Keys().account("ann"))
    assert not any(b"smtp-secret" in value for value in raw.values())
    assert store(conn).smtp_settings("ann").password == "smtp-secret"
    assert "smtp-secret" not in repr(store(conn).smtp_settings("ann"))

    # a PUT without the password keeps it; `smtp: null` removes the settings
    assert api("PUT", "/v1/account/ann", json={"smtp": {"port": 587}}).status_code == 200
    kept = store(conn).smtp_settings("ann")
    assert (kept.port, kept.password) == (587, "smtp-secret")
    assert fields(api("PUT", "/v1/account/ann", json={"smtp": {"port": 0}})) == {
        "smtp.port": "must be a port number from 1 to 65535"}
    assert api("PUT", "/v1/account/ann", json={"smtp": None}).status_code == 200
    assert api("GET", "/v1/account/ann").json()["smtp"] is None and store(conn).smtp_settings("ann") is None


def test_bad_smtp_settings_name_the_field(api):
    answer = api("POST", "/v1/account", json={"account": "x", "name": "X",
                                              "smtp": {"host": "", "port": "25", "auth": {"user": "u"}}})
    assert set(fields(answer)) == {"smtp.host", "smtp.port", "smtp.auth.pass"}


def test_submit_input_is_checked_field_by_field(ann, api):
    def bad(body):
        return fields(api("POST", "/v1/account/ann/submit", json=body))

    assert "to" in bad({"subject": "x", "text": "x"})
    assert "text" in bad({"to": "bob@example.test"})
    assert "to.0.address" in bad({"to": [{"address": "not an address"}], "text": "x"})
    assert "cc.1.address" in bad({"to": "b@example.test", "cc": ["c@example.test", "nope"], "text": "x"})
    assert "attachments.0.content" in bad({"to": "b@example.test", "text": "x",
                                           "attachments": [{"filename": "a", "content": "%%%not base64"}]})
    assert "sendAt" in bad({"to": "b@example.test", "text": "x", "sendAt": "next tuesday"})
    assert "headers.Subject" in bad({"to": "b@example.test", "text": "x", "headers": {"Subject": "x"}})
    assert "headers.X-Evil" in bad({"to": "b@example.test", "text": "x",
                                    "headers": {"X-Evil": "a\r\nBcc: x"}})
    assert "subject" in bad({"to": "b@example.test", "text": "x", "subject": "two\nlines"})
    assert "surprise" in bad({"to": "b@example.test", "text": "x", "surprise": 1})
    assert "body" in bad(["not", "an", "object"])


def test_size_limit(spawn, env, conn):
    small = dict(env, SUBMIT_MAX_SIZE="2KiB")
    web = start_web(spawn, small)
    token = TokenStore(conn, Keys()).issue(("api",))
    headers = {"Authorization": f"Bearer {token}"}
    requests.post(web.url + "/v1/account", headers=headers, timeout=10,
                  json={"account": "ann", "name": "Ann", "email": "ann@example.test", "smtp": SMTP})
    big = base64.b64encode(b"x" * 4096).decode()
    answer = requests.post(web.url + "/v1/account/ann/submit", headers=headers, timeout=10,
                           json={"to": "b@example.test", "text": "x",
                                 "attachments": [{"filename": "big.bin", "content": big}]})
    assert "SUBMIT_MAX_SIZE" in fields(answer)["attachments"]


def test_unknown_account_no_smtp_and_references(ann, api):
    message = {"to": "b@example.test", "text": "x"}
    assert api("POST", "/v1/account/nobody/submit", json=message).status_code == 404
    assert api("POST", "/v1/account", json={"account": "plain", "name": "P"}).status_code == 200
    assert "smtp" in fields(api("POST", "/v1/account/plain/submit", json=message))
    # A reference is checked before any IMAP process is asked (the rest: test_submit_reference.py).
    assert fields(api("POST", "/v1/account/ann/submit", json={
        "to": "b@example.test", "text": "x", "reference": {"message": "abc", "action": "reply"}})) == {
        "reference.message": "is not a message id"}
    assert fields(api("POST", "/v1/account/ann/submit", json={
        "to": "b@example.test", "text": "x", "reference": {"message": "abc", "action": "answer"}})) == {
        "reference.action": "must be reply, replyAll or forward"}


def test_answer_and_outbox(ann, api):
    past = api("POST", "/v1/account/ann/submit", json={"to": "b@example.test", "text": "x", "subject": "Now",
                                                       "sendAt": "2001-01-01T00:00:00Z",
                                                       "bcc": "hidden@example.test"}).json()
    assert past["response"] == "Queued for delivery"
    assert abs(time.time() - _unix(past["sendAt"])) < 600  # a past sendAt means now
    entry = api("GET", f"/v1/outbox/{past['queueId']}").json()
    assert entry["status"] == "queued" and entry["messageId"] == past["messageId"]
    assert entry["to"] == [{"name": "", "address": "b@example.test"}]  # bcc never shown
    listing = api("GET", "/v1/outbox?page=0&pageSize=1").json()
    assert listing["total"] == 1 and listing["messages"][0]["queueId"] == past["queueId"]
    assert api("GET", "/v1/outbox?pageSize=0").status_code == 400
    assert api("GET", "/v1/outbox/nosuchid").status_code == 404
    assert api("DELETE", f"/v1/outbox/{past['queueId']}").status_code == 200
    assert api("GET", "/v1/outbox").json()["total"] == 0


def _unix(iso: str) -> float:
    import datetime

    return datetime.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_health_wants_a_submit_worker_once_an_account_sends(web, api, spawn, env):
    spawn("workers.imap", env)
    spawn("workers.webhooks", env)
    wait_for(lambda: requests.get(web.url + "/health", timeout=10).status_code == 200, what="health ok")
    api("POST", "/v1/account", json={"account": "ann", "name": "Ann", "email": "a@example.test",
                                     "smtp": SMTP})
    body = requests.get(web.url + "/health", timeout=10).json()
    assert body["problems"] == ["no live submit worker"]
    spawn("workers.submit", env)
    wait_for(lambda: requests.get(web.url + "/health", timeout=10).status_code == 200, what="health ok")
    assert requests.get(web.url + "/health", timeout=10).json()["workers"]["submit"] == 1


def test_metrics_show_the_submit_queue_and_workers(ann, web, api, spawn, env, conn):
    token = TokenStore(conn, Keys()).issue(("metrics",))
    api("POST", "/v1/account/ann/submit", json={"to": "b@example.test", "text": "x"})
    api("POST", "/v1/account/ann/submit", json={"to": "b@example.test", "text": "x",
                                                "sendAt": "2099-01-01T00:00:00Z"})
    samples = parse(scrape_text(web.url, token))
    assert samples[("queue_size", (("queue", "submit"), ("state", "waiting")))] == 1
    assert samples[("queue_size", (("queue", "submit"), ("state", "delayed")))] == 1
    spawn("workers.submit", env)  # its SMTP server (port 2525) is not there: the attempt fails

    def counted():
        s = parse(scrape_text(web.url, token))
        return (s.get(("threads", (("recent", "yes"), ("type", "submit")))) == 1
                and s.get(("queues_processed", (("queue", "submit"), ("status", "failed"))), 0) >= 1)

    wait_for(counted, timeout=30, what="threads{type=submit} and queues_processed{queue=submit}")
