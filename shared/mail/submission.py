"""Validation of `POST /v1/account/{account}/submit` bodies (EmailEngine's shape) into a Submission.

Every problem is reported under its dotted field name (`to.0.address`, `attachments.1.content`)
and nothing is queued unless the whole body is good. Building the MIME is shared/mail/outgoing.py.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import re
from dataclasses import dataclass, field

from ..errors import InputError

FIELDS = {"from", "to", "cc", "bcc", "replyTo", "subject", "text", "html", "attachments", "headers",
          "reference", "sendAt", "copy", "messageId"}
# Loose on purpose (RFC 5321 mailboxes are wide); what matters is one @, no spaces or brackets.
ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.?[^@\s<>,;\"]*$")
HEADER_NAME = re.compile(r"^[!-9;-~]+$")  # printable, no colon (RFC 5322 field name)
# Headers that the message's own fields set: a custom header may not replace them.
RESERVED_HEADERS = {"from", "to", "cc", "bcc", "reply-to", "subject", "message-id", "date", "mime-version",
                    "content-type", "content-transfer-encoding", "in-reply-to", "references"}
MAX_RECIPIENTS = 500
MAX_SUBJECT = 998


@dataclass(frozen=True)
class Address:
    name: str
    address: str

    def as_dict(self) -> dict:
        return {"name": self.name, "address": self.address}


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    content_type: str
    cid: str | None


@dataclass
class Submission:
    sender: Address | None  # None: the account's own address
    to: list[Address]
    cc: list[Address]
    bcc: list[Address]
    reply_to: list[Address]
    subject: str
    text: str | None
    html: str | None
    attachments: list[Attachment]
    headers: dict[str, str]
    reference: dict | None  # {"message": id, "action": reply|replyAll|forward, "inline", "ignoreMissing"}
    send_at: float | None  # unix time; None or past: now
    copy: bool | None  # append to Sent; None: the default
    message_id: str | None  # the caller's Message-ID, else one is made
    problems: dict[str, str] = field(default_factory=dict)

    @property
    def recipients(self) -> list[str]:
        """Envelope recipients (bcc included), each once."""
        seen: dict[str, None] = {}
        for a in self.to + self.cc + self.bcc:
            seen.setdefault(a.address, None)
        return list(seen)


def _address(value, name: str, problems: dict) -> Address | None:
    if isinstance(value, str):
        value = {"address": value}
    if not isinstance(value, dict):
        problems[name] = "must be an address object {name, address} or an address string"
        return None
    unknown = value.keys() - {"name", "address"}
    if unknown:
        problems[f"{name}.{sorted(unknown)[0]}"] = "is not a known field"
    address, display = value.get("address"), value.get("name", "")
    if not isinstance(address, str) or not ADDRESS.fullmatch(address.strip()):
        problems[f"{name}.address"] = "must be an email address"
        return None
    if not isinstance(display, str) or len(display) > 256 or "\n" in display or "\r" in display:
        problems[f"{name}.name"] = "must be a one-line string of at most 256 characters"
        return None
    return Address(display.strip(), address.strip())


def _addresses(value, name: str, problems: dict) -> list[Address]:
    if value is None:
        return []
    if not isinstance(value, list):
        value = [value]
    if len(value) > MAX_RECIPIENTS:
        problems[name] = f"must list at most {MAX_RECIPIENTS} addresses"
        return []
    found = [_address(item, f"{name}.{i}", problems) for i, item in enumerate(value)]
    return [a for a in found if a is not None]


def _attachments(value, problems: dict) -> list[Attachment]:
    if value is None:
        return []
    if not isinstance(value, list):
        problems["attachments"] = "must be a list of {filename, content, contentType, cid}"
        return []
    found = []
    for i, item in enumerate(value):
        name = f"attachments.{i}"
        if not isinstance(item, dict):
            problems[name] = "must be an object {filename, content, contentType, cid}"
            continue
        unknown = item.keys() - {"filename", "content", "contentType", "cid", "encoding"}
        if unknown:
            problems[f"{name}.{sorted(unknown)[0]}"] = "is not a known field"
        content = item.get("content")
        try:
            if not isinstance(content, str):
                raise ValueError
            raw = base64.b64decode(content, validate=True)
        except (ValueError, binascii.Error):
            problems[f"{name}.content"] = "must be base64"
            continue
        filename = item.get("filename") or "attachment"
        content_type = item.get("contentType") or "application/octet-stream"
        cid = item.get("cid")
        if not isinstance(filename, str) or len(filename) > 255 or any(c in filename for c in "\r\n"):
            problems[f"{name}.filename"] = "must be a one-line string of at most 255 characters"
            continue
        if not isinstance(content_type, str) or not re.fullmatch(r"[\w.+-]+/[\w.+-]+", content_type):
            problems[f"{name}.contentType"] = "must be a MIME type such as image/png"
            continue
        if cid is not None and (not isinstance(cid, str) or not re.fullmatch(r"[!-~]{1,200}", cid)):
            problems[f"{name}.cid"] = "must be printable text without spaces"
            continue
        found.append(Attachment(filename, raw, content_type.lower(), cid))
    return found


def _headers(value, problems: dict) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems["headers"] = "must be an object of header name -> value"
        return {}
    clean = {}
    for name, text in value.items():
        if not HEADER_NAME.fullmatch(name) or name.lower() in RESERVED_HEADERS:
            problems[f"headers.{name}"] = "is not a header name that can be set here"
        elif not isinstance(text, str) or "\r" in text or "\n" in text or len(text) > 998:
            problems[f"headers.{name}"] = "must be a one-line string of at most 998 characters"
        else:
            clean[name] = text
    return clean


def parse_time(value) -> float:
    """ISO 8601 (`2026-12-02T10:00:00Z`, an offset, or naive = UTC) or unix milliseconds."""
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int | float):
        return float(value) / 1000
    if not isinstance(value, str) or not value.strip():
        raise ValueError
    when = datetime.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when.timestamp()


REFERENCE_FIELDS = {"message", "action", "inline", "ignoreMissing"}


def _reference(value, problems: dict) -> dict | None:
    """{message, action: reply|replyAll|forward, inline, ignoreMissing}: the referenced message is read at
    submit time (web/api/submit_reference.py)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        problems["reference"] = "must be an object {message, action}"
        return None
    for name in sorted(value.keys() - REFERENCE_FIELDS):
        problems[f"reference.{name}"] = f"is not a known field ({', '.join(sorted(REFERENCE_FIELDS))})"
    if not isinstance(value.get("message"), str) or not value["message"]:
        problems["reference.message"] = "must be the id of a message of the account"
        return None
    action = value.get("action", "reply")
    if action not in ("reply", "replyAll", "forward"):
        problems["reference.action"] = "must be reply, replyAll or forward"
        return None
    flags = {name: value.get(name, False) for name in ("inline", "ignoreMissing")}
    for name, flag in flags.items():
        if not isinstance(flag, bool):
            problems[f"reference.{name}"] = "must be true or false"
            return None
    if flags["inline"] and action == "forward":
        problems["reference.inline"] = "quotes the original in a reply; a forward carries it whole, attached"
        return None
    return {"message": value["message"], "action": action, **flags}


def parse(body, max_size: int) -> Submission:
    """A Submission from a request body; raises InputError naming every bad field."""
    if not isinstance(body, dict):
        raise InputError({"body": "must be a JSON object"})
    problems: dict[str, str] = {f: "is not a known field" for f in body.keys() - FIELDS}
    sender = _address(body["from"], "from", problems) if body.get("from") is not None else None
    subject = body.get("subject", "")
    if not isinstance(subject, str) or len(subject) > MAX_SUBJECT or "\r" in subject or "\n" in subject:
        problems["subject"] = f"must be a one-line string of at most {MAX_SUBJECT} characters"
        subject = ""
    text, html = body.get("text"), body.get("html")
    for name, part in (("text", text), ("html", html)):
        if part is not None and not isinstance(part, str):
            problems[name] = "must be a string"
    copy = body.get("copy")
    if copy is not None and not isinstance(copy, bool):
        problems["copy"] = "must be true or false"
    message_id = body.get("messageId")
    if message_id is not None and (not isinstance(message_id, str)
                                   or not re.fullmatch(r"<[!-;=?-~]+@[!-;=?-~]+>", message_id)):
        problems["messageId"] = "must look like <local@domain>"
    send_at = None
    if body.get("sendAt") is not None:
        try:
            send_at = parse_time(body["sendAt"])
        except (ValueError, TypeError, OverflowError):
            problems["sendAt"] = "must be an ISO 8601 time (2026-12-02T10:00:00Z) or unix milliseconds"
    submission = Submission(
        sender=sender, to=_addresses(body.get("to"), "to", problems),
        cc=_addresses(body.get("cc"), "cc", problems), bcc=_addresses(body.get("bcc"), "bcc", problems),
        reply_to=_addresses(body.get("replyTo"), "replyTo", problems), subject=subject,
        text=text if isinstance(text, str) else None, html=html if isinstance(html, str) else None,
        attachments=_attachments(body.get("attachments"), problems),
        headers=_headers(body.get("headers"), problems),
        reference=_reference(body.get("reference"), problems),
        send_at=send_at, copy=copy if isinstance(copy, bool) else None,
        message_id=message_id if "messageId" not in problems else None)
    replying = submission.reference is not None and submission.reference["action"] != "forward"
    if not submission.recipients and not replying \
            and not any(k.startswith(("to", "cc", "bcc")) for k in problems):
        problems["to"] = "at least one recipient (to, cc or bcc) is required"  # a reply: the original's
    if not submission.text and not submission.html and not submission.attachments \
            and not {"text", "html"} & problems.keys() and not submission.reference:
        problems["text"] = "a body is required: text, html or attachments"
    size = sum(len(a.content) for a in submission.attachments) + len(text or "") + len(html or "")
    if size > max_size:
        problems["attachments" if submission.attachments else "text"] = \
            f"the message is larger than the limit of {max_size} bytes (SUBMIT_MAX_SIZE)"
    if problems:
        raise InputError(problems)
    return submission
