"""SMTP delivery of one message over smtplib, with connections reused per account server.

smtplib under gevent's monkey-patching: every socket operation yields, so many sends run at
once in one process. A connection that finished a message cleanly goes back to a small idle
pool for its (host, port, secure, user) and the next message to that server skips the connect,
EHLO, STARTTLS and AUTH round trips (RSET first, so a stale connection is found at once and
replaced by a fresh one, without counting as a failed attempt).

Errors are grouped by what the caller does about them:
  TemporaryFailure -> retry later (4xx reply, network error, timeout, TLS trouble);
  PermanentFailure -> fail for good (5xx reply: rejected sender, recipients, message or login).
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import threading
from collections import defaultdict
from dataclasses import dataclass

import gevent

IDLE_PER_SERVER = 50  # idle connections kept per server (at least SUBMIT_CONCURRENCY: else churn)
MAX_REPLY = 500  # characters of a server reply kept (it is untrusted text)


class DeliveryFailure(Exception):
    def __init__(self, message: str, code: int | None = None, response: str = ""):
        super().__init__(message)
        self.code = code
        self.response = response


class TemporaryFailure(DeliveryFailure):
    """Worth trying again later."""


class PermanentFailure(DeliveryFailure):
    """The server refused for good."""


@dataclass(frozen=True)
class Sent:
    response: str  # the server's reply to DATA, e.g. "250 2.0.0 Ok: queued as 4F2C1"
    rejected: dict[str, str]  # recipients refused while others were accepted


def _text(reply) -> str:
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    printable = "".join(c if c.isprintable() else " " for c in str(reply))
    return printable[:MAX_REPLY]


def _failure(code: int, reply, what: str) -> DeliveryFailure:
    text = _text(reply)
    kind = PermanentFailure if 500 <= code < 600 else TemporaryFailure
    return kind(f"{what}: {code} {text}", code, f"{code} {text}")


class SmtpPool:
    def __init__(self, timeout: float, local_hostname: str | None = None):
        self.timeout = timeout
        self.local_hostname = local_hostname or socket.getfqdn()
        self.tls = ssl.create_default_context()  # verified certificates, as for IMAP
        self._idle: dict[tuple, list[smtplib.SMTP]] = defaultdict(list)
        self._lock = threading.Lock()

    def send(self, settings, envelope_from: str, recipients: list[str], raw: bytes) -> Sent:
        """Send one message within `timeout` seconds in all; raises Temporary/PermanentFailure."""
        try:
            with gevent.Timeout(self.timeout, TimeoutError(f"no answer within {self.timeout:g} s")):
                return self._send(settings, envelope_from, recipients, raw)
        except DeliveryFailure:
            raise
        except smtplib.SMTPResponseException as exc:
            raise _failure(exc.smtp_code, exc.smtp_error, "refused") from None
        except (smtplib.SMTPException, OSError, TimeoutError, ssl.SSLError) as exc:
            # Network errors, timeouts, dropped connections, TLS failures: nothing was accepted.
            raise TemporaryFailure(f"{type(exc).__name__}: {_text(exc) or 'connection failed'}") from None

    def _send(self, settings, envelope_from, recipients, raw) -> Sent:
        key = (settings.host, settings.port, settings.secure, settings.user)
        conn = self._take_idle(key)
        if conn is not None:
            try:
                code, reply = conn.rset()
                if code != 250:
                    raise smtplib.SMTPServerDisconnected(reply)
            except (smtplib.SMTPException, OSError):
                conn.close()  # went stale while idle: a fresh one, same attempt
                conn = None
        if conn is None:
            conn = self._connect(settings)
        try:
            sent = self._transaction(conn, envelope_from, recipients, raw)
        except BaseException:
            conn.close()  # no QUIT: the attempt's time may be up
            raise
        self._give_back(key, conn)
        return sent

    def _connect(self, settings) -> smtplib.SMTP:
        if settings.secure:
            conn = smtplib.SMTP_SSL(settings.host, settings.port, local_hostname=self.local_hostname,
                                    timeout=self.timeout, context=self.tls)
        else:
            conn = smtplib.SMTP(settings.host, settings.port, local_hostname=self.local_hostname,
                                timeout=self.timeout)
        try:
            conn.ehlo_or_helo_if_needed()
            if not settings.secure and conn.has_extn("starttls"):
                conn.starttls(context=self.tls)
                conn.ehlo()
            if settings.user:
                try:
                    conn.login(settings.user, settings.password or "")
                except smtplib.SMTPAuthenticationError as exc:
                    raise _failure(exc.smtp_code, exc.smtp_error, "authentication failed") from None
                except smtplib.SMTPNotSupportedError:
                    raise PermanentFailure("authentication failed: the server offers no AUTH") from None
        except BaseException:
            conn.close()
            raise
        return conn

    @staticmethod
    def _transaction(conn: smtplib.SMTP, envelope_from: str, recipients: list[str], raw: bytes) -> Sent:
        options = ["SMTPUTF8"] if conn.has_extn("smtputf8") and not envelope_from.isascii() else []
        if conn.has_extn("size"):
            options.append(f"SIZE={len(raw)}")
        code, reply = conn.mail(envelope_from, options)
        if code != 250:
            raise _failure(code, reply, "sender refused")
        accepted, rejected, temporary = [], {}, None
        for rcpt in recipients:
            code, reply = conn.rcpt(rcpt)
            if code in (250, 251):
                accepted.append(rcpt)
            else:
                rejected[rcpt] = f"{code} {_text(reply)}"
                if not 500 <= code < 600:
                    temporary = temporary or (code, reply)
        if not accepted:
            conn.rset()
            if temporary:  # some recipient may be accepted later: try the whole message again
                raise _failure(temporary[0], temporary[1], "recipients refused")
            first = next(iter(rejected.values()))
            raise PermanentFailure(f"every recipient refused: {first}", int(first[:3]), first)
        code, reply = conn.data(raw)
        if code != 250:
            raise _failure(code, reply, "message refused")
        return Sent(f"{code} {_text(reply)}", rejected)

    def _take_idle(self, key) -> smtplib.SMTP | None:
        with self._lock:
            return self._idle[key].pop() if self._idle[key] else None

    def _give_back(self, key, conn: smtplib.SMTP) -> None:
        with self._lock:
            if len(self._idle[key]) < IDLE_PER_SERVER:
                self._idle[key].append(conn)
                return
        self._close(conn)

    def close(self) -> None:
        with self._lock:
            conns = [c for idle in self._idle.values() for c in idle]
            self._idle.clear()
        for conn in conns:
            self._close(conn)

    @staticmethod
    def _close(conn: smtplib.SMTP) -> None:
        try:
            conn.quit()
        except (smtplib.SMTPException, OSError):
            conn.close()
