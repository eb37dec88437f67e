"""Sending, the full loop: POST submit -> a real submit worker -> a real Postfix on loopback ->
Dovecot over LMTP -> the receiving account's IMAP worker -> messageNew at a real receiver."""

from __future__ import annotations

import email
import email.policy

import pytest

from support.imap import events, store, wait_event, wait_state
from support.mail_system import mail_system
from support.postfix import Postfix
from support.servers import wait_for
from workers.submit.sent_copy import PER_ACCOUNT

ANN, BOB = "ann@example.test", "bob@example.test"


@pytest.fixture(scope="module")
def mail_servers():
    with mail_system({ANN: "pw-ann", BOB: "pw-bob"}) as servers:
        yield servers


def smtp_settings(mta: Postfix) -> dict:
    return {"host": "127.0.0.1", "port": mta.port, "secure": False}  # Postfix relays for loopback


@pytest.fixture
def accounts(conn, mail_servers):
    dovecot, mta = mail_servers
    store(conn).create({"account": "ann", "name": "Ann Example", "email": ANN,
                        "imap": dovecot.settings(ANN), "smtp": smtp_settings(mta)})
    store(conn).create({"account": "bob", "name": "Bob", "email": BOB, "imap": dovecot.settings(BOB)})
    return dovecot, mta


def test_sent_from_one_account_arrives_in_another_and_is_announced(
        accounts, conn, imap_env, spawn, receiver, delivering, api):
    dovecot, mta = accounts
    with dovecot.client(ANN) as client:
        client.create_folder("Sent")
    spawn("workers.imap", imap_env)
    spawn("workers.submit", imap_env)
    wait_state(conn, "bob", "connected")

    answer = api("POST", "/v1/account/ann/submit", json={
        "to": [{"name": "Bob", "address": BOB}], "subject": "Across the loop ✓",
        "text": "Plain body.\n", "html": "<p>HTML body</p>", "headers": {"X-Loop-Test": "1"},
        "attachments": [{"filename": "note.txt", "content": "aGVsbG8=", "contentType": "text/plain"}]})
    assert answer.status_code == 200, answer.text
    queued = answer.json()
    assert queued["response"] == "Queued for delivery"
    assert queued["messageId"].startswith("<") and queued["messageId"].endswith("@example.test>")

    sent = wait_event(receiver, "messageSent", "ann", timeout=30)
    assert sent["data"]["messageId"] == queued["messageId"]
    assert sent["data"]["queueId"] == queued["queueId"]
    assert sent["data"]["response"].startswith("250")

    new = wait_event(receiver, "messageNew", "bob", timeout=30,
                     where=lambda p: p["data"]["messageId"] == queued["messageId"])
    assert new["data"]["subject"] == "Across the loop ✓"
    assert new["data"]["from"] == {"name": "Ann Example", "address": ANN}
    assert events(receiver, "messageDeliveryError") == []

    with dovecot.client(BOB) as client:  # what arrived is what was built, bytes through Postfix
        client.select_folder("INBOX")
        uid = client.search(["HEADER", "Message-ID", queued["messageId"]])[0]
        raw = client.fetch([uid], ["RFC822"])[uid][b"RFC822"].replace(b"\r\n", b"\n")
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["X-Loop-Test"] == "1"
    assert message.get_body(("plain",)).get_content() == "Plain body.\n"
    assert "HTML body" in message.get_body(("html",)).get_content()
    attachment = next(message.iter_attachments())
    assert attachment.get_filename() == "note.txt" and attachment.get_content() == "hello"

    def in_sent():  # the sender's copy, appended by the submit worker
        with dovecot.client(ANN) as client:
            client.select_folder("Sent")
            return client.search(["HEADER", "Message-ID", queued["messageId"]])

    wait_for(in_sent, what="the copy in ann's Sent folder")

    # finished: gone from the outbox, visible by its queueId as finished
    assert api("GET", "/v1/outbox").json()["total"] == 0
    assert api("GET", f"/v1/outbox/{queued['queueId']}").json()["status"] == "finished"


def test_scheduled_send_waits_and_can_be_cancelled(accounts, conn, imap_env, spawn, receiver, delivering,
                                                    api):
    import datetime

    spawn("workers.submit", imap_env)
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=8)
    soon = api("POST", "/v1/account/ann/submit", json={"to": BOB, "subject": "Later", "text": "x",
                                                       "sendAt": later.isoformat(), "copy": False}).json()
    never = api("POST", "/v1/account/ann/submit", json={"to": BOB, "subject": "Never", "text": "x",
                                                        "sendAt": "2099-01-01T00:00:00Z"}).json()
    outbox = api("GET", "/v1/outbox").json()
    assert {m["queueId"] for m in outbox["messages"]} == {soon["queueId"], never["queueId"]}
    entry = api("GET", f"/v1/outbox/{never['queueId']}").json()
    assert entry["subject"] == "Never" and entry["scheduled"].startswith("2099-01-01")
    assert entry["to"] == [{"name": "", "address": BOB}] and entry["attemptsMade"] == 0

    assert api("DELETE", f"/v1/outbox/{never['queueId']}").json() == {"deleted": True,
                                                                      "queueId": never["queueId"]}
    assert api("GET", f"/v1/outbox/{never['queueId']}").status_code == 404
    assert api("DELETE", f"/v1/outbox/{never['queueId']}").status_code == 404

    assert events(receiver, "messageSent") == []  # not before its time
    sent = wait_event(receiver, "messageSent", "ann", timeout=30)
    assert sent["data"]["queueId"] == soon["queueId"]
    wait_for(lambda: api("GET", "/v1/outbox").json()["total"] == 0, what="an empty outbox")
    assert [e["data"]["queueId"] for e in events(receiver, "messageSent")] == [soon["queueId"]]
    assert api("DELETE", f"/v1/outbox/{soon['queueId']}").status_code == 409  # sent already


def test_copies_to_sent_share_a_few_imap_connections(accounts, conn, imap_env, spawn, api):
    dovecot, _ = accounts
    with dovecot.client(ANN) as client:
        if not client.folder_exists("Sent"):
            client.create_folder("Sent")
    logins_before = dovecot.log().count(f"Login: user=<{ANN}>")
    spawn("workers.submit", imap_env)  # no IMAP worker: every login of ann now is a copy's or ours
    queued = [api("POST", "/v1/account/ann/submit", json={"to": BOB, "subject": f"Series {i}", "text": "x"})
              .json()["messageId"] for i in range(12)]
    own_logins = []

    def copies() -> list[str]:
        """The Message-IDs in ann's Sent folder that this test queued (one per copy)."""
        own_logins.append(1)
        with dovecot.client(ANN) as client:
            client.select_folder("Sent", readonly=True)
            found = client.fetch(client.search(["ALL"]), ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
        ids = [item[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"].decode().split(":", 1)[1].strip()
               for item in found.values()]
        return [i for i in ids if i in queued]

    wait_for(lambda: len(copies()) >= len(queued), timeout=30, what="every message copied to Sent")
    assert sorted(copies()) == sorted(queued)  # one copy each
    copy_logins = dovecot.log().count(f"Login: user=<{ANN}>") - logins_before - len(own_logins)
    assert 1 <= copy_logins <= PER_ACCOUNT  # kept for the next copies, at most PER_ACCOUNT at once
