"""The submit worker against a scripted SMTP server (aiosmtpd): temporary and permanent failures,
slow answers, dropped connections, connection reuse, and a SIGKILL in the middle of a send."""

from __future__ import annotations

import email

import pytest

from support.imap import events, store, wait_event
from support.servers import wait_for
from support.smtp_server import ScriptedSmtp

FAST_SUBMIT = dict(SUBMIT_BACKOFF="0.2", SUBMIT_ATTEMPTS="3", SUBMIT_TIMEOUT="2", SUBMIT_LEASE="3")


@pytest.fixture
def submit_env(imap_env):
    imap_env.update(FAST_SUBMIT)
    return imap_env


def sender(conn, smtp: ScriptedSmtp) -> None:
    store(conn).create({"account": "ann", "name": "Ann", "email": "ann@example.test",
                        "smtp": smtp.settings()})


def submit(api, subject="Hi", **extra) -> dict:
    answer = api("POST", "/v1/account/ann/submit",
                 json={"to": "bob@example.test", "subject": subject, "text": "x", **extra})
    assert answer.status_code == 200, answer.text
    return answer.json()


def message_ids(smtp: ScriptedSmtp) -> list[str]:
    return [email.message_from_bytes(m.content)["Message-ID"] for m in smtp.messages]


def test_temporary_failure_is_retried_then_sent(conn, submit_env, spawn, receiver, delivering, api):
    with ScriptedSmtp(["451 4.3.0 Try again later"]) as smtp:
        sender(conn, smtp)
        spawn("workers.submit", submit_env)
        queued = submit(api)
        sent = wait_event(receiver, "messageSent", "ann", timeout=30)
        error = events(receiver, "messageDeliveryError")[0]["data"]
        assert error["smtpResponseCode"] == 451 and "Try again later" in error["smtpResponse"]
        assert error["job"]["attemptsMade"] == 1 and error["job"]["nextAttempt"] is not None
        assert sent["data"]["queueId"] == queued["queueId"]
        assert message_ids(smtp) == [queued["messageId"]] * 2  # the same message both times
        assert events(receiver, "messageFailed") == []


def test_permanent_failure_fails_at_once(conn, submit_env, spawn, receiver, delivering, api):
    with ScriptedSmtp(["550 5.1.1 No such user"]) as smtp:
        sender(conn, smtp)
        spawn("workers.submit", submit_env)
        queued = submit(api)
        failed = wait_event(receiver, "messageFailed", "ann", timeout=30)
        assert failed["data"]["smtpResponseCode"] == 550 and failed["data"]["queueId"] == queued["queueId"]
        assert len(events(receiver, "messageDeliveryError")) == 1
        assert len(smtp.messages) == 1
        entry = api("GET", f"/v1/outbox/{queued['queueId']}").json()
        assert entry["status"] == "failed" and "550" in entry["lastError"] and entry["attemptsMade"] == 1


def test_attempts_run_out(conn, submit_env, spawn, receiver, delivering, api):
    with ScriptedSmtp(["452 4.2.2 Mailbox full"] * 5) as smtp:
        sender(conn, smtp)
        spawn("workers.submit", submit_env)
        submit(api)
        failed = wait_event(receiver, "messageFailed", "ann", timeout=30)
        assert failed["data"]["smtpResponseCode"] == 452
        errors = [e["data"]["job"]["attemptsMade"] for e in events(receiver, "messageDeliveryError")]
        assert errors == [1, 2, 3] and len(smtp.messages) == 3  # SUBMIT_ATTEMPTS


def test_slow_answer_and_dropped_connection_are_retried(conn, submit_env, spawn, receiver, delivering, api):
    with ScriptedSmtp([("slow", 4, "250 2.0.0 late"), "drop"]) as smtp:
        sender(conn, smtp)
        spawn("workers.submit", submit_env)
        queued = submit(api)
        wait_event(receiver, "messageSent", "ann", timeout=40)
        errors = [e["data"] for e in events(receiver, "messageDeliveryError")]
        assert len(errors) == 2 and errors[0]["smtpResponseCode"] is None
        assert "2 s" in errors[0]["error"]  # the per-attempt timeout (SUBMIT_TIMEOUT)
        # The slow server kept the first copy after the client gave up: at least once, and every
        # copy carries the same Message-ID for the receiving side to de-duplicate.
        assert set(message_ids(smtp)) == {queued["messageId"]}


def test_connections_are_reused(conn, submit_env, spawn, receiver, delivering, api):
    with ScriptedSmtp() as smtp:
        sender(conn, smtp)
        spawn("workers.submit", submit_env)
        for n in range(6):
            submit(api, subject=f"m{n}")
            wait_for(lambda n=n: len(smtp.accepted()) == n + 1, what=f"message {n}")
        assert smtp.sessions == 1  # one after the other: one connection throughout


def test_sigkill_mid_send_loses_nothing(conn, submit_env, spawn, receiver, delivering, api):
    with ScriptedSmtp([("slow", 30, "250 2.0.0 too late")]) as smtp:
        sender(conn, smtp)
        first = spawn("workers.submit", dict(submit_env, SUBMIT_TIMEOUT="60"))
        queued = submit(api)
        wait_for(lambda: smtp.started == 1, what="the send to be in DATA")
        first.kill()
        spawn("workers.submit", submit_env)  # takes the job over once its lease (3 s) runs out
        sent = wait_event(receiver, "messageSent", "ann", timeout=40)
        assert sent["data"]["queueId"] == queued["queueId"]
        assert queued["messageId"] in message_ids(smtp)
        assert set(message_ids(smtp)) == {queued["messageId"]}
        assert api("GET", "/v1/outbox").json()["total"] == 0
