"""Pure parts of the IMAP worker: response labels, fair share, event data, backoff."""

from __future__ import annotations

import datetime

from imapclient.response_types import Address, Envelope

from shared.stores.leases import fair_share
from workers.imap.client import login_failure, response_labels
from workers.imap.sync import message_id, new_message_data


def test_response_labels_of_tagged_lines_only():
    assert response_labels(b"A12 OK [READ-ONLY] Examine completed") == ("OK", "READ-ONLY")
    assert response_labels(b"A13 NO [AUTHENTICATIONFAILED] Authentication failed.") == (
        "NO", "AUTHENTICATIONFAILED")
    assert response_labels(b"A14 BAD Error in IMAP command") == ("BAD", "")
    assert response_labels(b"A15 NO [X-MADE-UP-42] whatever") == ("NO", "OTHER")  # bounded labels
    assert response_labels(b"A16 OK [uidnext 5] lower case") == ("OK", "UIDNEXT")


def test_login_failure_keeps_response_and_code():
    failure = login_failure(Exception("b'[AUTHENTICATIONFAILED] Authentication failed.'"))
    assert failure.code == "AUTHENTICATIONFAILED"
    assert failure.response == "[AUTHENTICATIONFAILED] Authentication failed."


def test_fair_share_rounds_up_and_survives_no_live_process():
    assert fair_share(1000, 1) == 1000
    assert fair_share(5, 2) == 3
    assert fair_share(4, 2) == 2
    assert fair_share(3, 0) == 3
    assert fair_share(0, 3) == 0


def test_new_message_data_from_envelope():
    date = datetime.datetime(2026, 11, 27, 10, 0, tzinfo=datetime.UTC)
    envelope = Envelope(date=date, subject=b"=?utf-8?q?Gr=C3=BC=C3=9Fe?=",
                        from_=(Address(b"Bob Example", None, b"bob", b"example.com"),), sender=None,
                        reply_to=None, to=(Address(None, None, b"alice", b"example.com"),), cc=None,
                        bcc=None, in_reply_to=None, message_id=b"<m1@example.com>")
    item = {b"ENVELOPE": envelope, b"FLAGS": (b"\\Seen", b"\\Recent"), b"RFC822.SIZE": 321}
    data = new_message_data("INBOX", 7, 42, item)
    assert data == {"id": message_id("INBOX", 7, 42), "uid": 42, "path": "INBOX",
                    "date": "2026-11-27T10:00:00+00:00", "flags": ["\\Seen"], "size": 321,
                    "subject": "Grüße", "from": {"name": "Bob Example", "address": "bob@example.com"},
                    "to": [{"name": "", "address": "alice@example.com"}], "messageId": "<m1@example.com>"}
    assert message_id("INBOX", 7, 42) != message_id("INBOX", 8, 42) != message_id("Sent", 7, 42)
