"""Replies and forwards by reference, the full loop: the web reads the referenced message from
the IMAP process holding the account, a real submit worker sends through a real Postfix into
Dovecot, and the original is flagged \\Answered through the IMAP process afterwards."""

from __future__ import annotations

import email
import email.policy

import pytest

from shared.mail.message_ids import message_id, parse_message_id
from support.dovecot import Dovecot
from support.imap import store, wait_event, wait_state
from support.mail_system import mail_system
from support.servers import wait_for

ANN, BOB = "ann@example.test", "bob@example.test"
ORIGINAL = (b"From: Bob Example <bob@example.test>\r\n"
            b"To: Ann <ann@example.test>\r\n"
            b"Cc: Carol <carol@example.test>, ANN@example.test\r\n"
            b"Subject: Lunch on Friday?\r\n"
            b"Message-ID: <orig-1@example.test>\r\n"
            b"References: <root@example.test>\r\n"
            b"In-Reply-To: <root@example.test>\r\n"
            b"Date: Tue, 01 Dec 2026 10:00:00 +0000\r\n"
            b"MIME-Version: 1.0\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n\r\n"
            b"Shall we meet at n\xc3\xb6\xc3\xb6n?\r\n")


@pytest.fixture(scope="module")
def mail_servers():
    with mail_system({ANN: "pw-ann", BOB: "pw-bob"}) as servers:
        yield servers


@pytest.fixture
def original(conn, mail_servers):
    """ann (IMAP and SMTP) with ORIGINAL in her INBOX; its mailbox API id."""
    dovecot, mta = mail_servers
    store(conn).create({"account": "ann", "name": "Ann Example", "email": ANN, "imap": dovecot.settings(ANN),
                        "smtp": {"host": "127.0.0.1", "port": mta.port, "secure": False}})
    with dovecot.client(ANN) as client:
        client.select_folder("INBOX")
        client.delete_messages(client.search(["ALL"]))
        client.expunge()
        client.append("INBOX", ORIGINAL)
        uidvalidity = client.folder_status("INBOX", ["UIDVALIDITY"])[b"UIDVALIDITY"]
        uid = client.search(["HEADER", "Message-ID", "<orig-1@example.test>"])[0]
    return message_id("INBOX", uidvalidity, uid)


def arrived(dovecot: Dovecot, message_id_header: str) -> email.message.EmailMessage:
    def fetch():
        with dovecot.client(BOB) as client:
            client.select_folder("INBOX")
            uids = client.search(["HEADER", "Message-ID", message_id_header])
            return client.fetch(uids, ["RFC822"])[uids[0]][b"RFC822"] if uids else None

    raw = wait_for(fetch, timeout=30, what=f"{message_id_header} in bob's INBOX")
    return email.message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=email.policy.default)


def flags_of_original(dovecot: Dovecot) -> tuple:
    with dovecot.client(ANN) as client:
        client.select_folder("INBOX", readonly=True)
        uid = client.search(["HEADER", "Message-ID", "<orig-1@example.test>"])[0]
        return client.get_flags([uid])[uid]


def test_reply_threads_on_the_original_and_flags_it_answered(
        original, mail_servers, conn, imap_env, spawn, receiver, delivering, api):
    dovecot, _ = mail_servers
    spawn("workers.imap", imap_env)
    spawn("workers.submit", imap_env)
    wait_state(conn, "ann", "connected")

    answer = api("POST", "/v1/account/ann/submit", json={
        "reference": {"message": original, "action": "reply"}, "text": "Yes, at noon.\n", "copy": False})
    assert answer.status_code == 200, answer.text
    queued = answer.json()

    reply = arrived(dovecot, queued["messageId"])  # to: the original's From, as none was given
    assert reply["Subject"] == "Re: Lunch on Friday?"
    assert reply["In-Reply-To"] == "<orig-1@example.test>"
    assert reply["References"] == "<root@example.test> <orig-1@example.test>"
    assert [(a.display_name, a.addr_spec) for a in reply["To"].addresses] == [("Bob Example", BOB)]
    assert reply["From"].addresses[0].addr_spec == ANN
    assert reply.get_body(("plain",)).get_content() == "Yes, at noon.\n"
    sent = wait_event(receiver, "messageSent", "ann", timeout=30)
    assert sent["data"]["envelope"]["to"] == [BOB]

    wait_for(lambda: b"\\Answered" in flags_of_original(dovecot), timeout=30,
             what="the original flagged \\Answered")

    # A subject and recipients of its own are kept.
    again = api("POST", "/v1/account/ann/submit", json={
        "reference": {"message": original, "action": "reply"}, "subject": "About lunch", "to": BOB,
        "text": "Forgot one thing.", "copy": False}).json()
    outbox = api("GET", f"/v1/outbox/{again['queueId']}").json()
    assert outbox["subject"] == "About lunch" and outbox["to"] == [{"name": "", "address": BOB}]


def test_inline_reply_quotes_the_original(original, mail_servers, conn, imap_env, spawn, receiver, delivering,
                                          api):
    dovecot, _ = mail_servers
    spawn("workers.imap", imap_env)
    spawn("workers.submit", imap_env)
    wait_state(conn, "ann", "connected")

    answer = api("POST", "/v1/account/ann/submit", json={
        "reference": {"message": original, "action": "reply", "inline": True},
        "text": "Yes.", "html": "<p>Yes.</p>", "copy": False})
    assert answer.status_code == 200, answer.text
    reply = arrived(dovecot, answer.json()["messageId"])
    plain = reply.get_body(("plain",)).get_content()
    assert plain == ("Yes.\n\nOn Tue, 01 Dec 2026 10:00:00 +0000, Bob Example <bob@example.test> wrote:\n"
                     "> Shall we meet at nöön?\n")
    html = reply.get_body(("html",)).get_content()
    assert html.startswith("<p>Yes.</p>") and "<blockquote" in html
    assert "<pre>Shall we meet at nöön?\n</pre>" in html  # a plain original, escaped in html
    assert reply["In-Reply-To"] == "<orig-1@example.test>"


def test_forward_attaches_the_original_whole(original, mail_servers, conn, imap_env, spawn, receiver,
                                             delivering, api):
    dovecot, _ = mail_servers
    spawn("workers.imap", imap_env)
    spawn("workers.submit", imap_env)
    wait_state(conn, "ann", "connected")

    answer = api("POST", "/v1/account/ann/submit", json={
        "reference": {"message": original, "action": "forward"}, "to": {"name": "Bob", "address": BOB},
        "text": "FYI, see below.\n", "copy": False})
    assert answer.status_code == 200, answer.text
    forward = arrived(dovecot, answer.json()["messageId"])
    assert forward["Subject"] == "Fwd: Lunch on Friday?"
    assert forward["References"] == "<root@example.test> <orig-1@example.test>"
    assert forward["In-Reply-To"] is None
    assert forward.get_body(("plain",)).get_content() == "FYI, see below.\n"
    attached = [p for p in forward.iter_attachments() if p.get_content_type() == "message/rfc822"]
    assert len(attached) == 1 and attached[0].get_filename() == "Lunch on Friday.eml"
    inner = attached[0].get_content()
    assert inner["Message-ID"] == "<orig-1@example.test>"
    assert inner.get_content() == "Shall we meet at nöön?\n"  # 8-bit text, unchanged

    wait_event(receiver, "messageSent", "ann", timeout=30)
    assert b"\\Answered" not in flags_of_original(dovecot)  # only a reply answers


def test_unknown_or_malformed_reference(original, conn, imap_env, spawn, api):
    spawn("workers.imap", imap_env)
    wait_state(conn, "ann", "connected")
    path, uidvalidity, _ = parse_message_id(original)
    missing = message_id(path, uidvalidity, 999)  # the same mailbox generation, no such UID

    gone = api("POST", "/v1/account/ann/submit", json={
        "reference": {"message": missing, "action": "reply"}, "text": "x"})
    assert gone.status_code == 404, gone.text
    assert gone.json()["fields"] == {"reference.message": "no such message"}
    forward_gone = api("POST", "/v1/account/ann/submit", json={
        "reference": {"message": missing, "action": "forward"}, "to": BOB, "text": "x"})
    assert forward_gone.status_code == 404, forward_gone.text

    malformed = api("POST", "/v1/account/ann/submit", json={"reference": {"message": "nonsense"},
                                                            "text": "x"})
    assert malformed.status_code == 400
    assert malformed.json()["fields"] == {"reference.message": "is not a message id"}
    unknown_field = api("POST", "/v1/account/ann/submit", json={
        "reference": {"message": original, "forwardAttachments": True}, "text": "x"})
    assert unknown_field.status_code == 400
    assert "reference.forwardAttachments" in unknown_field.json()["fields"]
    inline_forward = api("POST", "/v1/account/ann/submit", json={
        "reference": {"message": original, "action": "forward", "inline": True}, "to": BOB, "text": "x"})
    assert inline_forward.status_code == 400 and "reference.inline" in inline_forward.json()["fields"]

    # replyAll: the sender as To, everyone else it went to as Cc, but the account itself
    everyone = api("POST", "/v1/account/ann/submit", json={
        "reference": {"message": original, "action": "replyAll"}, "text": "x"})
    assert everyone.status_code == 200, everyone.text
    assert api("GET", f"/v1/outbox/{everyone.json()['queueId']}").json()["to"] == [
        {"name": "Bob Example", "address": BOB}, {"name": "Carol", "address": "carol@example.test"}]

    # ignoreMissing: sent as a plain message, when it says whom to
    plain = api("POST", "/v1/account/ann/submit", json={
        "reference": {"message": missing, "action": "reply", "ignoreMissing": True}, "to": BOB, "text": "x"})
    assert plain.status_code == 200, plain.text
    nobody = api("POST", "/v1/account/ann/submit", json={
        "reference": {"message": missing, "action": "reply", "ignoreMissing": True}, "text": "x"})
    assert nobody.status_code == 400 and "to" in nobody.json()["fields"]


def test_reference_of_an_account_no_imap_process_holds_is_503(original, api):
    answer = api("POST", "/v1/account/ann/submit", json={
        "reference": {"message": original, "action": "reply"}, "text": "x"})
    assert answer.status_code == 503, answer.text
    assert "not connected" in answer.json()["message"]
    assert api("GET", "/v1/outbox").json()["total"] == 0  # nothing queued


def test_reply_is_sent_when_the_account_is_not_connected_at_flag_time(
        original, mail_servers, conn, imap_env, spawn, receiver, delivering, api, tmp_path):
    dovecot, _ = mail_servers
    imap = spawn("workers.imap", imap_env)
    wait_state(conn, "ann", "connected")
    queued = api("POST", "/v1/account/ann/submit", json={
        "reference": {"message": original, "action": "reply"}, "text": "Late reply.", "copy": False}).json()
    assert imap.stop() == 0  # no IMAP process holds ann when the submit worker sends
    submit = spawn("workers.submit", dict(imap_env, API_TIMEOUT="3"))

    sent = wait_event(receiver, "messageSent", "ann", timeout=30)
    assert sent["data"]["queueId"] == queued["queueId"]
    assert arrived(dovecot, queued["messageId"])["In-Reply-To"] == "<orig-1@example.test>"
    wait_for(lambda: "not flagged \\Answered" in submit.output(), timeout=30,
             what="the submit worker's note that the original was left unflagged")
    assert api("GET", f"/v1/outbox/{queued['queueId']}").json()["status"] == "finished"
    assert b"\\Answered" not in flags_of_original(dovecot)
