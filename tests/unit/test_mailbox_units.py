"""Units of the mailbox API: ids round-trip and refuse what is not theirs; chunked decoding
equals whole decoding wherever the chunks are cut; search objects become IMAP criteria."""

from __future__ import annotations

import base64
import email.parser
import email.policy
import os
import quopri

import pytest

from shared.errors import InputError
from shared.mail.message_ids import (
    MalformedId,
    attachment_id,
    message_id,
    parse_attachment_id,
    parse_message_id,
    parse_text_id,
    text_id,
)
from support import mail
from web.api.mailbox_search import search_criteria
from workers.imap.mailbox_ops.message import ParsedHeaders
from workers.imap.message_parts import ChunkDecoder, clean, decode_bytes


def test_ids_round_trip_and_refuse_other_kinds():
    assert parse_message_id(message_id("Archive/2024 é", 7, 42)) == ("Archive/2024 é", 7, 42)
    assert parse_attachment_id(attachment_id("INBOX", 7, 42, "2.1")) == ("INBOX", 7, 42, "2.1")
    assert parse_text_id(text_id("INBOX", 7, 42, ["1.1"], ["1.2"])) == ("INBOX", 7, 42, ["1.1"], ["1.2"])
    assert message_id("INBOX", 7, 42) != message_id("INBOX", 8, 42) != message_id("Sent", 7, 42)
    for bad in ("", "not-an-id", "!!!!", base64.urlsafe_b64encode(b'["INBOX", 0, 1]').decode(),
                attachment_id("INBOX", 7, 42, "1"), "A" * 5000):
        with pytest.raises(MalformedId):
            parse_message_id(bad)
    with pytest.raises(MalformedId):
        parse_attachment_id(message_id("INBOX", 7, 42))
    with pytest.raises(MalformedId):
        parse_attachment_id(base64.urlsafe_b64encode(b'["INBOX",7,42,"1]<0.9>"]').decode())


@pytest.mark.parametrize("cut", [1, 3, 76, 1000, 4096])
def test_chunked_decoding_equals_whole(cut):
    data = os.urandom(10_000)
    qp = quopri.encodestring(data)
    # Quoted-printable leaves line breaks in the data as they are, so binary data with a bare CR
    # or LF does not come back byte for byte, by quopri itself either: the whole decoding is the
    # reference there.
    for encoding, encoded, whole in (("base64", base64.encodebytes(data).replace(b"\n", b"\r\n"), data),
                                     ("quoted-printable", qp, quopri.decodestring(qp)), ("8bit", data, data)):
        decoder = ChunkDecoder(encoding)
        out = b"".join(decoder.feed(encoded[i:i + cut]) for i in range(0, len(encoded), cut))
        assert out + decoder.finish() == whole, encoding


def test_undecodable_text_is_replaced_never_raised():
    assert decode_bytes("Привет".encode("koi8-r"), "koi8-r") == "Привет"
    assert decode_bytes(b"caf\xc3\xa9 \xff", "x-unknown") == "café \ufffd"
    assert decode_bytes(b"\x98", "windows-1251") == "\ufffd"


def test_search_objects_become_criteria():
    assert search_criteria({"seen": False, "from": "bob", "since": "2024-05-01", "larger": 10}) == [
        "UNSEEN", "FROM", "bob", "SINCE", "01-May-2024", "LARGER", "10"]
    assert search_criteria({}) == ["ALL"]
    with pytest.raises(InputError) as refused:
        search_criteria({"subject": "x\r\nA1 LOGOUT"})
    assert list(refused.value.fields) == ["search.subject"]


HEADER_SAMPLES = [
    mail.multipart(), mail.legacy_8bit(), mail.bad_headers(),
    b"From: a@example.com\r\nFrom: <<broken\r\nTo: undisclosed-recipients:;\r\n"
    b"Cc: \"X\" <x@example.com>, garbage <<\r\nReceived: one\r\nReceived: two\r\n"
    b"Date: not a date\r\nSubject: =?utf-8?b?w6k=?=\r\nX-\xff: \xfe\r\n\r\n",
]


@pytest.mark.parametrize("raw", HEADER_SAMPLES, ids=["multipart", "legacy", "bad", "malformed"])
def test_headers_parsed_once_read_as_the_modern_policy_reads_them(raw):
    head = raw.split(b"\r\n\r\n")[0].split(b"\n\n")[0] + b"\r\n\r\n"
    reference = email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(head)
    headers = ParsedHeaders(head)
    for name in ("subject", "date", "message-id", "x-missing"):
        value = reference.get(name)
        assert headers.text(name) == (clean(str(value)) if value is not None else "")
    for name in ("from", "to", "cc", "sender"):
        value = reference.get(name)
        expected = [{"name": clean(a.display_name), "address": clean(a.addr_spec)}
                    for a in (value.addresses if value is not None else ())]
        assert headers.addresses(name) == expected
    assert headers.all() == {name.lower(): [clean(str(v)) for v in reference.get_all(name)]
                             for name in reference.keys()}
    assert headers.all().get("received", ["one", "two"]) == ["one", "two"]  # repeated, in order


def test_a_plain_answer_is_the_json_text_flask_would_send():
    from flask import Flask, jsonify

    from shared.mail import mailbox_channel as channel

    body = {"subject": "Zoë", "to": [{"name": "", "address": "a@example.com"}], "size": 1.5,
            "flags": [], "b": None, "a": {"z": True, "y": "\\Seen"}}
    kind, (status, text) = channel.decode(channel.answer(201, body))
    assert (kind, status) == (channel.ANSWER, 201)
    with Flask(__name__).app_context():
        assert text == jsonify(body).get_data()


def test_the_operations_served_are_the_metric_label_set():
    from shared.mail.mailbox_channel import OPERATIONS
    from workers.imap.mailbox_ops import OPS

    assert sorted(OPS) == sorted(OPERATIONS)
