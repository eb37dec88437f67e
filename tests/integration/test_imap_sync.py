"""A real IMAP worker process syncing real Dovecot accounts; events checked at a real receiver."""

from __future__ import annotations

from support.imap import add_account, events, wait_event, wait_state
from support.servers import wait_for


def test_new_account_announces_no_old_mail_then_new_mail(conn, dovecot, imap_env, spawn, receiver,
                                                          delivering):
    dovecot.add_user("alice", "pw-alice")
    dovecot.append("alice", subject="Old mail")
    add_account(conn, dovecot, "alice")
    spawn("workers.imap", imap_env)
    wait_event(receiver, "accountInitialized", "alice")
    assert wait_event(receiver, "authenticationSuccess", "alice")
    wait_state(conn, "alice", "connected")

    dovecot.append("alice", subject="Fresh news", sender="Bob Example <bob@example.com>")
    new = wait_event(receiver, "messageNew", "alice", timeout=3)  # the bound
    assert new["path"] == "INBOX"
    data = new["data"]
    assert data["subject"] == "Fresh news"
    assert data["from"] == {"name": "Bob Example", "address": "bob@example.com"}
    assert data["to"] == [{"name": "", "address": "alice@example.com"}]
    assert data["uid"] == 2 and data["size"] > 0 and data["messageId"].endswith("@mailpulse.test>")
    assert [e["data"]["subject"] for e in events(receiver, "messageNew")] == ["Fresh news"]


def test_back_to_back_mail_each_announced_once(conn, dovecot, imap_env, spawn, receiver, delivering):
    add_account(conn, dovecot, "bob")
    spawn("workers.imap", imap_env)
    wait_event(receiver, "accountInitialized", "bob")
    with dovecot.client("bob") as client:
        for n in range(5):
            dovecot.append_with(client, f"mail {n}", "x@example.com", "bob@example.com")
    wait_for(lambda: len(events(receiver, "messageNew", "bob")) >= 5, timeout=15, what="5 messageNew")
    subjects = sorted(e["data"]["subject"] for e in events(receiver, "messageNew", "bob"))
    assert subjects == [f"mail {n}" for n in range(5)]


def test_flag_change_delete_and_new_folder(conn, dovecot, imap_env, spawn, receiver, delivering):
    add_account(conn, dovecot, "carol")
    uid = dovecot.append("carol", subject="To be flagged")
    spawn("workers.imap", imap_env)
    wait_event(receiver, "accountInitialized", "carol")

    with dovecot.client("carol") as client:
        client.select_folder("INBOX")
        client.add_flags([uid], [b"\\Flagged"])
    updated = wait_event(receiver, "messageUpdated", "carol")
    assert updated["data"]["uid"] == uid
    assert updated["data"]["changes"]["flags"] == {"added": ["\\Flagged"], "removed": [],
                                                   "value": ["\\Flagged"]}

    with dovecot.client("carol") as client:
        client.select_folder("INBOX")
        client.delete_messages([uid])
        client.expunge()
    deleted = wait_event(receiver, "messageDeleted", "carol")
    assert deleted["data"]["uid"] == uid and deleted["data"]["id"] == updated["data"]["id"]

    with dovecot.client("carol") as client:
        client.create_folder("Projects")
    new_folder = wait_event(receiver, "mailboxNew", "carol")
    assert new_folder["path"] == "Projects"

    dovecot.append("carol", subject="Filed", folder="Projects")  # other folders: polled
    filed = wait_event(receiver, "messageNew", "carol")
    assert filed["path"] == "Projects" and filed["data"]["subject"] == "Filed"

    with dovecot.client("carol") as client:
        client.delete_folder("Projects")
    assert wait_event(receiver, "mailboxDeleted", "carol")["path"] == "Projects"
