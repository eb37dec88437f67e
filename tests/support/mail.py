"""Real messages for the mailbox API tests: multipart with attachments, RFC 2047 headers, 8-bit
bodies in legacy charsets, big attachments, appended over IMAP as a mail client would."""

from __future__ import annotations

import email.base64mime
import email.utils
from email.message import EmailMessage

from imapclient import IMAPClient

PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489") + b"\0" * 40


def multipart(subject: str = "Quarterly report", attachment: bytes = b"%PDF-1.4 report\n" * 100,
              filename: str = "report.pdf", subtype: str = "pdf") -> bytes:
    """text/plain + text/html (with an embedded image, multipart/related) + a PDF attachment."""
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = "Zoë Ärger <zoe@example.com>"
    msg["To"] = "Alice <alice@example.com>, bob@example.com"
    msg["Cc"] = "carol@example.com"
    msg["Date"] = email.utils.formatdate(localtime=False)
    msg["Message-ID"] = email.utils.make_msgid(domain="mailpulse.test")
    msg["In-Reply-To"] = "<earlier@mailpulse.test>"
    msg.set_content("Hello Alice,\nthe report is attached. Grüße\n")
    msg.add_alternative('<p>Hello Alice, <img src="cid:logo@mailpulse.test"> Grüße</p>', subtype="html")
    msg.get_payload()[1].add_related(PNG, "image", "png", cid="<logo@mailpulse.test>")
    msg.add_attachment(attachment, maintype="application", subtype=subtype, filename=filename)
    return msg.as_bytes()


def legacy_8bit(charset: str = "windows-1251", text: str = "Привет, мир! Тест.\n") -> bytes:
    """A body in a legacy charset sent as raw 8-bit bytes, with raw 8-bit bytes in the body that
    are invalid in it too (0x98 is undefined in windows-1251)."""
    body = text.encode(charset) + b"bad byte: \x98\n"
    headers = (f"From: ivan@example.ru\r\nTo: alice@example.com\r\n"
               f"Subject: =?{charset}?B?{email.base64mime.body_encode('Отчёт'.encode(charset)).strip()}?=\r\n"
               f"Date: {email.utils.formatdate()}\r\nMessage-ID: <legacy@mailpulse.test>\r\n"
               f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset={charset}\r\n"
               f"Content-Transfer-Encoding: 8bit\r\n\r\n")
    return headers.encode("ascii") + body.replace(b"\n", b"\r\n")


def bad_headers() -> bytes:
    """RFC 2047 words in an unknown charset and with broken base64, and an unknown body charset."""
    return (b"From: =?x-no-such-charset?Q?Mr=E9_X?= <x@example.com>\r\n"
            b"To: alice@example.com\r\nSubject: =?utf-8?B?not*base64*at*all?= and =?utf-8?Q?caf=C3=A9?=\r\n"
            b"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nMessage-ID: <bad@mailpulse.test>\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=x-unknown-charset\r\n"
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9 =FF=FE end=\r\n\r\n")


def append(client: IMAPClient, raw: bytes, folder: str = "INBOX", flags=()) -> int:
    """APPEND a message; returns its UID (Dovecot answers APPENDUID)."""
    reply = client.append(folder, raw, flags=flags)
    text = reply.decode() if isinstance(reply, bytes) else str(reply)
    return int(text.split()[2].rstrip("]"))
