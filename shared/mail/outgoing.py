"""The MIME of a message to send, built once when it is submitted (standard library only).

Built at submit time, not at each attempt: every retry, and a second send after a crash, sends
the very same bytes with the same Message-ID, which is what receivers de-duplicate on.
"""

from __future__ import annotations

import email.parser
import email.policy
import email.utils
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage

from .submission import Address, Submission

POLICY = email.policy.SMTP  # CRLF line ends, as the wire wants them


def _header_address(address: Address) -> HeaderAddress:
    local, _, domain = address.address.rpartition("@")
    return HeaderAddress(display_name=address.name, username=local, domain=domain)


def make_message_id(sender: str) -> str:
    domain = sender.rpartition("@")[2] or "mailpulse.invalid"
    return email.utils.make_msgid(domain=domain)


def sender_of(submission: Submission, account_email: str, account_name: str) -> Address:
    """The From address: the submission's, else the account's own."""
    return submission.sender or Address(account_name or "", account_email)


def build(submission: Submission, sender: Address, reference_headers: dict[str, str] | None = None,
          now: float | None = None, forwarded: bytes | None = None) -> EmailMessage:
    """The message: headers, text and/or html (alternative), attachments (inline with a cid), and
    `forwarded` (an original's source) attached whole as message/rfc822."""
    msg = EmailMessage(policy=POLICY)
    msg["From"] = _header_address(sender)
    headers = (("To", submission.to), ("Cc", submission.cc), ("Reply-To", submission.reply_to))
    for header, addresses in headers:
        if addresses:
            msg[header] = [_header_address(a) for a in addresses]  # Bcc: the envelope only
    msg["Subject"] = submission.subject
    msg["Date"] = email.utils.formatdate(now, localtime=False)
    msg["Message-ID"] = submission.message_id or make_message_id(sender.address)
    msg["MIME-Version"] = "1.0"
    for name, value in (reference_headers or {}).items():
        msg[name] = value
    for name, value in submission.headers.items():
        msg[name] = value
    if submission.text is not None:
        msg.set_content(submission.text)
    if submission.html is not None:
        if submission.text is not None:
            msg.add_alternative(submission.html, subtype="html")
        else:
            msg.set_content(submission.html, subtype="html")
    inline = [a for a in submission.attachments if a.cid]
    if inline and submission.html is not None:  # html that refers to them: multipart/related
        html_part = msg if not msg.is_multipart() else msg.get_payload()[-1]
        for a in inline:
            maintype, subtype = a.content_type.split("/", 1)
            html_part.add_related(a.content, maintype=maintype, subtype=subtype, cid=f"<{a.cid}>",
                                  filename=a.filename, disposition="inline")
    for a in submission.attachments:
        if a.cid and submission.html is not None:
            continue
        maintype, subtype = a.content_type.split("/", 1)
        msg.add_attachment(a.content, maintype=maintype, subtype=subtype, filename=a.filename)
    if not msg.get_content_type().startswith("multipart") and msg.get_payload() in (None, ""):
        msg.set_content("")  # a reference-only message (forward) still needs a body
    if forwarded is not None:
        # compat32 parses without rewriting: the original goes out as it was stored.
        original = email.message_from_bytes(forwarded, policy=email.policy.compat32)
        msg.add_attachment(original, filename=_eml_name(forwarded))
    return msg


def _eml_name(source: bytes) -> str:
    """`<its subject>.eml`, as mail clients name a forwarded message."""
    try:
        headers = email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(source)
        subject = str(headers["Subject"] or "")
    except Exception:  # noqa: BLE001 - a subject the parser cannot decode: a plain name
        subject = ""
    name = "".join(c for c in subject if c.isprintable() and c not in '\\/:*?"<>|').strip()[:100]
    return f"{name or 'message'}.eml"
