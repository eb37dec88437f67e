"""pytest fixtures of the mailbox API tests; a test module imports the ones it uses."""

from __future__ import annotations

import pytest

from shared.mail.message_ids import message_id

from . import mail
from .imap import add_account, wait_state


@pytest.fixture(name="alice")
def alice_fixture(conn, dovecot, imap_env, spawn):
    """Account `alice` with three messages in INBOX, held by a running IMAP process."""
    add_account(conn, dovecot, "alice")
    with dovecot.client("alice") as client:
        uids = {"multipart": mail.append(client, mail.multipart()),
                "legacy": mail.append(client, mail.legacy_8bit(), flags=[b"\\Seen"]),
                "bad": mail.append(client, mail.bad_headers())}
        uidvalidity = client.select_folder("INBOX")[b"UIDVALIDITY"]
    spawn("workers.imap", imap_env)
    wait_state(conn, "alice", "connected")
    return {name: message_id("INBOX", uidvalidity, uid) for name, uid in uids.items()} | {
        "uidvalidity": uidvalidity, "uids": uids}
