"""Login failures and a server that goes away: states, and each distinct error announced once."""

from __future__ import annotations

import time

from support.imap import add_account, events, state, store, wait_event, wait_state
from support.servers import wait_for
from support.webhooks import counter, metric_samples


def test_wrong_password_is_announced_once_over_retries(conn, dovecot, imap_env, spawn, receiver,
                                                        delivering):
    dovecot.add_user("dave", "right")
    add_account(conn, dovecot, "dave", password="wrong")
    spawn("workers.imap", imap_env)
    wait_state(conn, "dave", "authenticationError")
    event = wait_event(receiver, "authenticationError", "dave")
    assert event["data"]["serverResponseCode"] == "AUTHENTICATIONFAILED"
    assert "wrong" not in str(event) and "right" not in str(event)

    def refusals():
        samples = metric_samples(imap_env["PROMETHEUS_MULTIPROC_DIR"])
        return counter(samples, "imap_responses", response="NO", code="AUTHENTICATIONFAILED")

    seen = set()

    def refused_three_times():
        seen.add(state(conn, "dave"))
        return refusals() >= 3

    wait_for(refused_three_times, timeout=40, what="three refused logins")
    assert seen == {"authenticationError"}  # retries keep showing the error, never `connecting`
    assert len(events(receiver, "authenticationError", "dave")) == 1
    assert store(conn).get("dave")["lastError"]["serverResponseCode"] == "AUTHENTICATIONFAILED"

    # The password is fixed through the store: the worker reconnects at once and says so.
    store(conn).update("dave", {"imap": {"auth": {"pass": "right"}}})
    wait_event(receiver, "authenticationSuccess", "dave")
    wait_state(conn, "dave", "connected")
    assert len(events(receiver, "authenticationError", "dave")) == 1


def test_server_restart_connect_error_then_mail_meanwhile_announced_once(conn, dovecot, imap_env, spawn,
                                                                         receiver, delivering):
    add_account(conn, dovecot, "erin")
    spawn("workers.imap", imap_env)
    wait_event(receiver, "accountInitialized", "erin")
    wait_state(conn, "erin", "connected")

    dovecot.stop()
    dovecot.deliver("erin", "Arrived while the server was down")
    wait_event(receiver, "connectError", "erin")
    wait_state(conn, "erin", "connectError")
    time.sleep(2)  # several reconnect attempts (backoff 0.2-1 s) while the server is down
    assert len(events(receiver, "connectError", "erin")) == 1

    dovecot.start()
    wait_state(conn, "erin", "connected")
    new = wait_event(receiver, "messageNew", "erin")
    assert new["data"]["subject"] == "Arrived while the server was down"
    dovecot.append("erin", subject="After the restart")
    wait_event(receiver, "messageNew", "erin", where=lambda p: p["data"]["subject"] == "After the restart")
    time.sleep(1)  # room for a duplicate to show up
    subjects = [e["data"]["subject"] for e in events(receiver, "messageNew", "erin")]
    assert sorted(subjects) == ["After the restart", "Arrived while the server was down"]


def test_non_ascii_password_logs_in_with_authenticate_plain(conn, dovecot, imap_env, spawn):
    dovecot.add_user("nora", "pässwörd-€")  # imaplib's LOGIN can send ASCII only
    add_account(conn, dovecot, "nora")
    worker = spawn("workers.imap", imap_env)
    wait_state(conn, "nora", "connected")
    assert "Traceback" not in worker.output()


def test_non_ascii_password_without_auth_plain_is_an_authentication_error(conn, imap_env, spawn):
    from support.dovecot import Dovecot

    with Dovecot(extra_config="auth_mechanisms = login") as server:  # no AUTH=PLAIN offered
        server.add_user("olaf", "geheim-ß")
        add_account(conn, server, "olaf")
        worker = spawn("workers.imap", imap_env)
        wait_state(conn, "olaf", "authenticationError")
        error = store(conn).get("olaf")["lastError"]
        assert "AUTH=PLAIN" in error["response"] and "ß" not in error["response"]
        output = worker.output()
        assert "Traceback" not in output and "ß" not in output and "geheim" not in output
