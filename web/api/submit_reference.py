"""Replies and forwards by reference (EmailEngine's `reference: {message, action}` on submit).
`action` reply (the default) and replyAll are replies, forward a forward.

The referenced message is read when the message is submitted, from the IMAP process that holds
the account (shared/mail/mailbox_client.py; the web process opens no IMAP connection), so what is
queued is complete and every attempt sends the same bytes.

- reply: In-Reply-To = the original's Message-ID; References = its References + its Message-ID;
  subject "Re: <its subject>" unless one is given (no second "Re: "); `to` = its Reply-To, else
  its From, unless recipients are given (replyAll: also its To and Cc, but the account's own
  address, as Cc); with `inline`, its text quoted below the new one
  (submit_quote.py). Once sent, the submit worker flags it `\\Answered`.
- forward: subject "Fwd: <its subject>" unless given; References as for a reply (threading, no
  In-Reply-To); the original attached whole as message/rfc822, so its text and its attachments
  travel inside it unchanged.

An unknown message is 404 naming `reference.message` (with ignoreMissing: sent as a plain
message); an account no IMAP process serves now is 503, a holder that does not answer 504.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.errors import InputError
from shared.mail import message_ids
from shared.mail.mailbox_client import ChannelError, MailboxChannel
from shared.mail.submission import ADDRESS, MAX_RECIPIENTS, MAX_SUBJECT, Address, Submission

from . import submit_quote

MAX_REFERENCES = 30  # message ids kept in References: the first and the latest ones
_MSGID = re.compile(r"<[^<>\s]+>")
_RE = re.compile(r"^\s*re\s*:", re.IGNORECASE)
_FWD = re.compile(r"^\s*(fwd?|fw)\s*:", re.IGNORECASE)


class ReferenceMissing(Exception):
    """No such message (deleted, moved, its mailbox reset): 404 naming reference.message."""


class ReferenceUnavailable(Exception):
    """The reference could not be read now: answered with `status` (503, 504, ...)."""

    def __init__(self, status: int, error: str, message: str):
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


@dataclass
class Referenced:
    headers: dict[str, str]  # In-Reply-To and References of the new message
    forwarded: bytes | None  # forward: the original's source, to attach
    answers: dict | None  # reply: the original's id params, flagged \Answered once sent


def _references(original: dict) -> tuple[str | None, str | None]:
    """(In-Reply-To, References) for an answer to `original` (the mailbox API's message body)."""
    own = _MSGID.findall(original.get("messageId") or "")
    earlier = _MSGID.findall(" ".join((original.get("headers") or {}).get("references") or []))
    if not earlier:  # a reply to a message without References threads on what it replied to
        earlier = _MSGID.findall(original.get("inReplyTo") or "")
    chain = list(dict.fromkeys(earlier + own[:1]))
    if len(chain) > MAX_REFERENCES:
        chain = chain[:1] + chain[-(MAX_REFERENCES - 1):]
    return (own[0] if own else None), (" ".join(chain) or None)


def _prefixed(prefix: str, pattern: re.Pattern, subject: str) -> str:
    subject = " ".join(subject.split())  # one line
    return (subject if pattern.match(subject) else f"{prefix} {subject}".rstrip())[:MAX_SUBJECT]


def _call(channel: MailboxChannel, account: str, op: str, params: dict, stream: bool = False):
    try:
        return channel.stream(account, op, params) if stream else channel.call(account, op, params)
    except ChannelError as exc:
        raise ReferenceUnavailable(exc.status, exc.error, f"reference.message: {exc}") from None


def _unavailable(reply) -> ReferenceUnavailable:
    message = (reply.body or {}).get("message", "")
    return ReferenceUnavailable(reply.status, "Service Unavailable" if reply.status == 503 else "Error",
                                f"reference.message: {message}")


def _source(channel: MailboxChannel, account: str, params: dict, max_size: int) -> bytes | None:
    """The original's bytes, None when it is gone; at most max_size (else 400)."""
    reply = _call(channel, account, "source", params, stream=True)
    if reply.status == 404:
        return None
    if reply.status != 200 or reply.chunks is None:
        raise _unavailable(reply)
    too_big = InputError({"reference.message": f"the message to forward is larger than the limit "
                                               f"of {max_size} bytes (SUBMIT_MAX_SIZE)"})
    if int(reply.headers.get("Content-Length") or 0) > max_size:
        reply.chunks.close()  # tells the holder to stop sending
        raise too_big
    data = bytearray()
    for chunk in reply.chunks:
        data += chunk
        if len(data) > max_size:
            reply.chunks.close()
            raise too_big
    if not reply.complete:  # the holder failed or stopped midway: never forward a part of it
        raise ReferenceUnavailable(503, "Service Unavailable",
                                   "reference.message: the IMAP process stopped sending the message midway")
    return bytes(data)


def _usable(addresses: list[dict], leave_out: set[str]) -> list[Address]:
    """The original's addresses that can be sent to, each once, none of `leave_out`."""
    found: dict[str, Address] = {}
    for a in addresses:
        address = a.get("address") or ""
        if ADDRESS.fullmatch(address) and address.lower() not in leave_out:
            found.setdefault(address.lower(), Address(" ".join((a.get("name") or "").split())[:256], address))
    return list(found.values())[:MAX_RECIPIENTS]


def apply(channel: MailboxChannel, account: str, submission: Submission, max_size: int,
          own_addresses: frozenset[str] = frozenset()) -> Referenced:
    """Read the referenced message and complete `submission` (subject, recipients) in place.
    `own_addresses`: the account's (and the sender's), never among a replyAll's recipients."""
    reference = submission.reference
    try:
        path, uidvalidity, uid = message_ids.parse_message_id(reference["message"])
    except message_ids.MalformedId:
        raise InputError({"reference.message": "is not a message id"}) from None
    params = {"id": reference["message"], "path": path, "uidvalidity": uidvalidity, "uid": uid}
    text_type = "*" if reference["inline"] else None  # the text to quote, in the same call
    reply = _call(channel, account, "message", {**params, "textType": text_type})
    forwarded = None
    if reply.status == 200 and reference["action"] == "forward":
        forwarded = _source(channel, account, params, max_size)
    gone = reply.status == 404 or (reply.status == 200 and reference["action"] == "forward"
                                   and forwarded is None)
    if gone:
        if reference["ignoreMissing"]:
            if not submission.recipients:
                raise InputError({"to": "is required: the referenced message is gone"})
            return Referenced({}, None, None)
        raise ReferenceMissing(f"reference.message {reference['message']!r}: no such message")
    if reply.status != 200:
        raise _unavailable(reply)
    original = reply.body
    in_reply_to, references = _references(original)
    headers = {"References": references} if references else {}
    if reference["action"] != "forward":
        if in_reply_to:
            headers["In-Reply-To"] = in_reply_to
        if not submission.subject:
            submission.subject = _prefixed("Re:", _RE, original.get("subject") or "")
        if reference["inline"]:
            submission.text, submission.html = submit_quote.quoted(submission.text, submission.html, original)
        if not submission.recipients:
            answer_to = original.get("replyTo") or ([original["from"]] if original.get("from") else [])
            submission.to = _usable(answer_to, set())
            if reference["action"] == "replyAll":  # and everyone else it went to, but the account
                submission.cc = _usable((original.get("to") or []) + (original.get("cc") or []),
                                        {a.address.lower() for a in submission.to}
                                        | {a.lower() for a in own_addresses})
            if not submission.to:
                raise InputError({"to": "is required: the referenced message has no From or Reply-To"})
        return Referenced(headers, None, params)
    if not submission.subject:
        submission.subject = _prefixed("Fwd:", _FWD, original.get("subject") or "")
    return Referenced(headers, forwarded, None)
