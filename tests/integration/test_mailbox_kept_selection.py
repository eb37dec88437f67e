"""A command connection keeps its mailbox selected between calls: what other clients changed
meanwhile (flags, new mail, expunges, a deleted or re-created mailbox) shows in the next call
all the same, against real Dovecot."""

from __future__ import annotations

from shared.mail.message_ids import message_id
from support import mail
from support.mailbox_fixtures import alice_fixture  # noqa: F401


def test_changes_made_elsewhere_show_in_the_next_call(alice, api, dovecot):
    path = f"/v1/account/alice/message/{alice['multipart']}"
    assert api("GET", path).json()["flags"] == []  # INBOX is selected on the connection now
    with dovecot.client("alice") as client:
        client.select_folder("INBOX")
        client.add_flags([alice["uids"]["multipart"]], [b"\\Flagged"])
        new_uid = mail.append(client, mail.multipart(subject="Arrived after the select"))
    again = api("GET", path)
    assert again.status_code == 200 and again.json()["flags"] == ["\\Flagged"], again.text
    new = api("GET", f"/v1/account/alice/message/{message_id('INBOX', alice['uidvalidity'], new_uid)}")
    assert new.status_code == 200 and new.json()["subject"] == "Arrived after the select"
    with dovecot.client("alice") as client:
        client.select_folder("INBOX")
        client.delete_messages([new_uid])
        client.expunge()
    gone = api("GET", f"/v1/account/alice/message/{message_id('INBOX', alice['uidvalidity'], new_uid)}")
    assert gone.status_code == 404


def test_a_selected_mailbox_deleted_or_recreated_elsewhere(alice, api, dovecot):
    with dovecot.client("alice") as client:
        client.create_folder("Projects")
        uid = mail.append(client, mail.multipart(subject="In Projects"), folder="Projects")
        uidvalidity = client.select_folder("Projects")[b"UIDVALIDITY"]
    old_id = message_id("Projects", uidvalidity, uid)
    assert api("GET", f"/v1/account/alice/message/{old_id}").status_code == 200
    with dovecot.client("alice") as client:
        client.delete_folder("Projects")
    deleted = api("GET", f"/v1/account/alice/message/{old_id}")
    assert deleted.status_code == 404 and "'Projects'" in deleted.json()["message"]
    with dovecot.client("alice") as client:
        client.create_folder("Projects")
        new_uid = mail.append(client, mail.multipart(subject="Projects, again"), folder="Projects")
        new_uidvalidity = client.select_folder("Projects")[b"UIDVALIDITY"]
    assert api("GET", f"/v1/account/alice/message/{message_id('Projects', new_uidvalidity, new_uid)}"
               ).json()["subject"] == "Projects, again"
    assert api("GET", f"/v1/account/alice/message/{old_id}").status_code == 404  # the old generation
