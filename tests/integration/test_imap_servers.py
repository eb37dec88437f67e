"""The core scenarios against more real servers than Dovecot: Cyrus (`/` separator, CONDSTORE and
QRESYNC) and Courier (folders under `INBOX.` with `.` as separator, no CONDSTORE). Each server is
started once for the module (support/extra_servers.py)."""

from __future__ import annotations

import itertools

import pytest

from support.extra_servers import Courier, Cyrus
from support.imap import add_account, events, wait_event, wait_state

SERVERS = {"cyrus": Cyrus, "courier": Courier}
_names = itertools.count()


@pytest.fixture(scope="module", params=sorted(SERVERS))
def server(request):
    with SERVERS[request.param]() as started:
        yield started


def new_user(server, password: str | None = None) -> str:
    user = f"user{next(_names)}"
    server.add_user(user, password or f"pw-{user}")
    return user


def test_new_mail_flags_and_deletion(server, conn, imap_env, spawn, receiver, delivering):
    user = new_user(server)
    old = server.append(user, subject="already there")
    add_account(conn, server, user)
    spawn("workers.imap", imap_env)
    wait_event(receiver, "authenticationSuccess", user)
    wait_event(receiver, "accountInitialized", user)
    wait_state(conn, user, "connected")

    server.append(user, subject="fresh news", sender="Bob Example <bob@example.com>")
    new = wait_event(receiver, "messageNew", user)
    assert new["path"] == "INBOX" and new["data"]["subject"] == "fresh news"
    assert new["data"]["from"] == {"name": "Bob Example", "address": "bob@example.com"}

    with server.client(user) as client:
        client.select_folder("INBOX")
        client.add_flags([old], [b"\\Flagged"])
    updated = wait_event(receiver, "messageUpdated", user)
    assert updated["data"]["uid"] == old and updated["data"]["changes"]["flags"]["added"] == ["\\Flagged"]

    with server.client(user) as client:
        client.select_folder("INBOX")
        client.delete_messages([old])
        client.expunge()
    deleted = wait_event(receiver, "messageDeleted", user)
    assert deleted["data"] == {"id": updated["data"]["id"], "uid": old}
    assert [e["data"]["subject"] for e in events(receiver, "messageNew", user)] == ["fresh news"]


def test_folder_created_filed_into_and_deleted(server, conn, imap_env, spawn, receiver, delivering):
    user = new_user(server)
    add_account(conn, server, user)
    spawn("workers.imap", imap_env)
    wait_event(receiver, "accountInitialized", user)
    path = server.folder("Projects")  # "Projects" on Cyrus, "INBOX.Projects" on Courier
    with server.client(user) as client:
        client.create_folder(path)
    created = wait_event(receiver, "mailboxNew", user)
    assert created["data"] == {"path": path, "name": "Projects"}
    server.append(user, subject="filed", folder=path)
    filed = wait_event(receiver, "messageNew", user)
    assert filed["path"] == path and filed["data"]["subject"] == "filed"
    with server.client(user) as client:
        client.delete_folder(path)
    assert wait_event(receiver, "mailboxDeleted", user)["path"] == path


def test_wrong_password(server, conn, imap_env, spawn, receiver, delivering):
    user = new_user(server, password="right")
    add_account(conn, server, user, password="wrong")
    spawn("workers.imap", imap_env)
    wait_state(conn, user, "authenticationError")
    assert wait_event(receiver, "authenticationError", user)["data"]["response"]


@pytest.mark.parametrize("kind", sorted(SERVERS))
def test_without_idle_new_mail_is_polled(kind, conn, imap_env, spawn, receiver, delivering):
    if kind == "cyrus":
        without_idle = Cyrus(idle=False)
    else:
        without_idle = Courier(capability="IMAP4rev1 UIDPLUS NAMESPACE")
    with without_idle as server:
        user = new_user(server)
        with server.client(user) as client:
            assert b"IDLE" not in client.capabilities()
        add_account(conn, server, user)
        spawn("workers.imap", imap_env)
        wait_event(receiver, "accountInitialized", user)
        server.append(user, subject="polled in")
        assert wait_event(receiver, "messageNew", user, timeout=30)["data"]["subject"] == "polled in"
