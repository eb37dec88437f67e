"""The admin accounts page on a real web process and a real Redis: list, add, delete, reconnect."""

from __future__ import annotations

import json

from rq import Queue

from shared.keys import Keys
from support.admin import logged_in, post_form
from support.imap import hold_elsewhere
from support.servers import wait_for

FORM = {"account": "alice", "name": "Alice", "email": "alice@example.com", "imap_host": "imap.example.com",
        "imap_port": "993", "imap_secure": "1", "imap_user": "alice", "imap_pass": "s3cret-pass"}




def queued_events(conn) -> list[str]:
    return [job.args[0]["event"] for job in Queue("notify", connection=conn).get_jobs()]


def test_add_through_the_form(admin, conn, account_store):
    session = logged_in(admin)
    page = post_form(session, admin, "/admin/accounts", "/admin/accounts", FORM)
    assert page.status_code == 200 and "Added account" in page.text
    assert 'data-account="alice"' in page.text and "s3cret-pass" not in page.text
    account = account_store.get("alice")
    assert account["name"] == "Alice" and account["state"] == "init"
    assert account["imap"] == {"host": "imap.example.com", "port": 993, "secure": True,
                               "auth": {"user": "alice"}}
    assert account_store.imap_settings("alice").password == "s3cret-pass"
    assert queued_events(conn) == ["accountAdded"]


def test_account_without_imap_is_unset(admin, account_store):
    session = logged_in(admin)
    post_form(session, admin, "/admin/accounts", "/admin/accounts", {"name": "No IMAP", "account": "plain"})
    assert account_store.get("plain")["state"] == "unset"


def test_invalid_form_names_the_fields_and_saves_nothing(admin, account_store):
    session = logged_in(admin)
    bad = dict(FORM, name="", imap_port="99999", email="not-an-address")
    page = post_form(session, admin, "/admin/accounts", "/admin/accounts", bad)
    assert page.status_code == 400
    for field in ("name", "imap.port", "email"):
        assert f'data-field="{field}"' in page.text
    assert 'value="imap.example.com"' in page.text  # kept for correction...
    assert "s3cret-pass" not in page.text  # ...but never the password
    assert account_store.list()["total"] == 0


def test_duplicate_id_is_refused(admin, account_store):
    session = logged_in(admin)
    post_form(session, admin, "/admin/accounts", "/admin/accounts", FORM)
    page = post_form(session, admin, "/admin/accounts", "/admin/accounts", FORM)
    assert page.status_code == 409 and "already exists" in page.text


def test_list_shows_state_and_last_error(admin, conn, account_store):
    account_store.create({"account": "bob", "name": "Bob", "imap": {
        "host": "imap.example.com", "port": 993, "secure": True, "auth": {"user": "bob", "pass": "pw"}}})
    hold_elsewhere(conn, "bob", "imap-worker-1")  # as a worker holding it
    error = {"response": "Invalid credentials (Failure)", "serverResponseCode": "AUTHENTICATIONFAILED"}
    account_store.set_state("bob", "authenticationError", error)
    session = logged_in(admin)
    page = session.get(admin + "/admin/accounts", timeout=10).text
    row = page.split('data-account="bob"')[1].split("</tr>")[0]
    assert "authenticationError" in row and "Invalid credentials (Failure)" in row
    overview = session.get(admin + "/admin/", timeout=10).text
    assert 'data-state="authenticationError">1<' in overview and 'data-state="connected">0<' in overview


def test_delete(admin, conn, account_store):
    session = logged_in(admin)
    post_form(session, admin, "/admin/accounts", "/admin/accounts", FORM)
    page = post_form(session, admin, "/admin/accounts", "/admin/accounts/alice/delete", {})
    assert page.status_code == 200 and "Deleted account" in page.text
    assert account_store.get("alice") is None and 'data-account="alice"' not in page.text
    assert queued_events(conn) == ["accountAdded", "accountDeleted"]
    missing = post_form(session, admin, "/admin/accounts", "/admin/accounts/alice/delete", {})
    assert missing.status_code == 404


def test_reconnect_is_published_to_the_workers(admin, conn, account_store):
    session = logged_in(admin)
    post_form(session, admin, "/admin/accounts", "/admin/accounts", FORM)
    pubsub = conn.pubsub(ignore_subscribe_messages=True)
    channel = Keys().account_changes
    pubsub.subscribe(channel)
    wait_for(lambda: conn.pubsub_numsub(channel)[0][1] == 1, what="the subscription to be in place")
    page = post_form(session, admin, "/admin/accounts", "/admin/accounts/alice/reconnect", {})
    assert page.status_code == 200 and "reconnect" in page.text
    message = wait_for(lambda: pubsub.get_message(timeout=0.5), what="the reconnect message")
    change = json.loads(message["data"])
    assert change == {"account": "alice", "action": "reconnect", "seq": change["seq"]}
    assert account_store.changes_since(change["seq"] - 1) == [("alice", change["seq"])]  # logged too
    pubsub.close()


def test_changes_need_the_csrf_token(admin, account_store):
    session = logged_in(admin)
    post_form(session, admin, "/admin/accounts", "/admin/accounts", FORM)
    assert session.post(admin + "/admin/accounts/alice/delete", timeout=10).status_code == 400
    added = session.post(admin + "/admin/accounts", data=dict(FORM, account="x"), timeout=10)
    assert added.status_code == 400
    assert account_store.get("alice") is not None and account_store.get("x") is None
