"""Folders on their own: a refused folder is skipped and reported, a later folder's mail is new
mail, and deletions are found without QRESYNC (counts and sequence probes)."""

from __future__ import annotations

import os
import tempfile

import pytest

from support.dovecot import Dovecot
from support.imap import add_account, events, store, wait_event, wait_state
from support.servers import wait_for


@pytest.fixture
def acl_dovecot():
    """Dovecot whose global ACL lets the owner see folder `Secret` but not open it (NOPERM)."""
    directory = tempfile.mkdtemp(prefix="mailpulse-acl-")
    os.chmod(directory, 0o755)
    acl = os.path.join(directory, "acl")
    with open(acl, "w") as f:
        f.write("Secret owner l\n")
    os.chmod(acl, 0o644)
    server = Dovecot(extra_config=f"""mail_plugins = $mail_plugins acl
protocol imap {{
  mail_plugins = $mail_plugins imap_acl
}}
plugin {{
  acl = vfile:{acl}
}}""")
    server.start()
    yield server
    server.close()


def logins(server: Dovecot, user: str) -> int:
    return server.log().count(f"Login: user=<{user}>")


def test_a_refused_folder_is_skipped_and_reported_while_the_rest_syncs(conn, acl_dovecot, imap_env, spawn,
                                                                      receiver, delivering):
    server = acl_dovecot
    server.add_user("rita", "pw-rita")
    with server.client("rita") as client:
        client.create_folder("Secret")
        client.create_folder("Work")
    add_account(conn, server, "rita")
    worker = spawn("workers.imap", imap_env)
    wait_event(receiver, "accountInitialized", "rita")
    wait_state(conn, "rita", "connected")
    errors = wait_for(lambda: store(conn).get("rita")["syncErrors"], what="syncErrors in the account")
    assert list(errors) == ["Secret"] and "NOPERM" in errors["Secret"]
    before = logins(server, "rita")

    server.append("rita", subject="to the inbox")
    assert wait_event(receiver, "messageNew", "rita")["data"]["subject"] == "to the inbox"
    server.append("rita", subject="to work", folder="Work")  # the other folders are polled still
    filed = wait_event(receiver, "messageNew", "rita", where=lambda p: p["path"] == "Work")
    assert filed["data"]["subject"] == "to work"
    assert logins(server, "rita") == before + 2  # the two APPENDs: the worker never logged in again
    assert "connection ended" not in worker.output()
    assert worker.output().count("folder 'Secret' skipped") == 1  # logged once, not every poll


def test_mail_in_a_folder_created_later_is_announced(conn, dovecot, imap_env, spawn, receiver, delivering):
    add_account(conn, dovecot, "sam")
    spawn("workers.imap", imap_env)
    wait_event(receiver, "accountInitialized", "sam")
    with dovecot.client("sam") as client:  # as Sieve `fileinto :create` would
        client.create_folder("Receipts")
        for n in range(3):
            dovecot.append_with(client, f"receipt {n}", "shop@example.com", "sam@example.com",
                                folder="Receipts")
    assert wait_event(receiver, "mailboxNew", "sam")["data"] == {"path": "Receipts", "name": "Receipts"}
    wait_for(lambda: len(events(receiver, "messageNew", "sam")) >= 3, what="3 messageNew")
    new = events(receiver, "messageNew", "sam")
    assert sorted(e["data"]["subject"] for e in new) == [f"receipt {n}" for n in range(3)]
    assert {e["path"] for e in new} == {"Receipts"}


def test_deletions_are_found_without_qresync(conn, imap_env, spawn, receiver, delivering):
    # CONDSTORE but no QRESYNC: no VANISHED, so deletions come from counts and sequence probes.
    server = Dovecot(extra_config="imap_capability = IMAP4rev1 LITERAL+ UIDPLUS IDLE ENABLE CONDSTORE")
    server.start()
    try:
        server.add_user("tom", "pw-tom")
        with server.client("tom") as client:
            assert b"QRESYNC" not in client.capabilities()
            client.select_folder("INBOX")  # makes the Maildir
        server.deliver_many("tom", [f"old {n}" for n in range(400)])
        add_account(conn, server, "tom")
        spawn("workers.imap", imap_env)
        wait_event(receiver, "accountInitialized", "tom")
        wait_state(conn, "tom", "connected")
        gone = [1, 77, 200, 201, 202, 399, 400]
        with server.client("tom") as client:
            client.select_folder("INBOX")
            client.delete_messages(gone)
            client.expunge()
        wait_for(lambda: len(events(receiver, "messageDeleted", "tom")) >= len(gone), timeout=20,
                 what="every deletion announced")
        server.append("tom", subject="after the deletions")
        wait_event(receiver, "messageNew", "tom")
        assert sorted(e["data"]["uid"] for e in events(receiver, "messageDeleted", "tom")) == gone
        new = [e["data"]["subject"] for e in events(receiver, "messageNew", "tom")]
        assert new == ["after the deletions"]
    finally:
        server.close()
