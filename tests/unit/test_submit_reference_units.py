"""Replies and forwards without servers: the threading headers and subjects taken from an
original (the mailbox API's message body), and a forward's message/rfc822 part."""

from __future__ import annotations

import email
import email.policy

import pytest

from shared.errors import InputError
from shared.mail import outgoing, submission
from web.api.submit_quote import quoted
from web.api.submit_reference import _FWD, _RE, MAX_REFERENCES, _prefixed, _references


def test_references_continue_the_thread_of_the_original():
    original = {"messageId": "<c@x>", "inReplyTo": "<b@x>", "headers": {"references": ["<a@x> <b@x>"]}}
    assert _references(original) == ("<c@x>", "<a@x> <b@x> <c@x>")


def test_an_original_without_references_threads_on_what_it_replied_to():
    assert _references({"messageId": "<c@x>", "inReplyTo": "<b@x>", "headers": {}}) == (
        "<c@x>", "<b@x> <c@x>")
    assert _references({"messageId": "<c@x>", "headers": {}}) == ("<c@x>", "<c@x>")


def test_an_original_without_a_message_id_gives_no_in_reply_to():
    assert _references({"messageId": "", "headers": {"references": ["<a@x>"]}}) == (None, "<a@x>")
    assert _references({"headers": {}}) == (None, None)


def test_long_threads_keep_the_first_and_the_latest_ids_and_drop_junk():
    chain = " ".join(f"<{i}@x>" for i in range(100))
    _, references = _references({"messageId": "<last@x>", "headers": {"references": [chain + " junk <>"]}})
    ids = references.split()
    assert len(ids) == MAX_REFERENCES and ids[0] == "<0@x>" and ids[-1] == "<last@x>" and ids[-2] == "<99@x>"
    assert "junk" not in references and "<>" not in ids


def test_subject_prefixes_are_added_once():
    assert _prefixed("Re:", _RE, "Lunch") == "Re: Lunch"
    assert _prefixed("Re:", _RE, "RE: Lunch") == "RE: Lunch"
    assert _prefixed("Re:", _RE, "") == "Re:"
    assert _prefixed("Fwd:", _FWD, "Fw: Lunch") == "Fw: Lunch"
    assert _prefixed("Fwd:", _FWD, "Re: Lunch") == "Fwd: Re: Lunch"
    assert _prefixed("Re:", _RE, "two\r\n lines") == "Re: two lines"  # one line, always
    assert len(_prefixed("Re:", _RE, "x" * 5000)) == submission.MAX_SUBJECT


def test_a_forward_carries_the_original_unchanged_as_message_rfc822():
    original = (b"From: Bob <bob@x.test>\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n"
                b"Message-ID: <o@x.test>\r\nContent-Type: text/plain; charset=utf-8\r\n"
                b"Content-Transfer-Encoding: 8bit\r\n\r\nGr\xc3\xbc\xc3\x9fe aus Bern\r\n")
    message = submission.parse({"to": "carol@x.test", "text": "FYI",
                                "reference": {"message": "id", "action": "forward"}}, 10**6)
    built = outgoing.build(message, submission.Address("", "ann@x.test"), {"References": "<o@x.test>"},
                           forwarded=original)
    raw = built.as_bytes()
    assert original in raw  # the bytes as stored, not re-encoded
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    attached = next(p for p in parsed.iter_attachments() if p.get_content_type() == "message/rfc822")
    assert attached.get_filename() == "Grüße.eml"
    assert parsed.get_body(("plain",)).get_content().strip() == "FYI"
    assert parsed["References"] == "<o@x.test>"


def test_a_reply_needs_no_recipient_of_its_own_but_a_forward_does():
    reply = submission.parse({"text": "x", "reference": {"message": "id"}}, 10**6)
    assert reply.reference == {"message": "id", "action": "reply", "inline": False, "ignoreMissing": False}
    with pytest.raises(InputError) as refused:
        submission.parse({"text": "x", "reference": {"message": "id", "action": "forward"}}, 10**6)
    assert "to" in refused.value.fields


ORIGINAL = {"from": {"name": "Bob", "address": "bob@x.test"}, "headerDate": "Tue, 1 Dec 2026 10:00 +0000"}


def test_inline_quotes_each_part_the_reply_has():
    original = dict(ORIGINAL, text={"plain": "one\n\ntwo", "html": "<html><head><style>p{}</style></head>"
                                                                   "<body><p>one</p><p>two</p></body></html>"})
    text, html = quoted("Sure.\n", "<p>Sure.</p>", original)
    assert text == "Sure.\n\nOn Tue, 1 Dec 2026 10:00 +0000, Bob <bob@x.test> wrote:\n> one\n>\n> two\n"
    assert html.startswith("<p>Sure.</p>\n"
                           "<p>On Tue, 1 Dec 2026 10:00 +0000, Bob &lt;bob@x.test&gt; wrote:</p>")
    assert "<blockquote" in html and "<p>one</p><p>two</p>" in html
    assert "<style>" not in html and "<body" not in html  # the original's body only
    assert quoted("Sure.", None, original)[1] is None  # no html part: none added


def test_inline_of_an_html_only_original_and_of_a_reply_without_a_body():
    original = dict(ORIGINAL, text={"plain": "", "html": "<p>Fish &amp; chips?</p>"})
    text, html = quoted(None, None, original)
    assert text == "On Tue, 1 Dec 2026 10:00 +0000, Bob <bob@x.test> wrote:\n> Fish & chips?\n"
    assert html is None
    plain_only = dict(ORIGINAL, text={"plain": "a < b", "html": ""})
    assert "<pre>a &lt; b</pre>" in quoted(None, "<p>ok</p>", plain_only)[1]
