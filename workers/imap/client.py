"""An IMAPClient whose traffic is metered, and the grouping of IMAP failures by what to do next.

Metering sits in a subclass of imaplib's connection class (the one imapclient builds), so the
greeting and the CAPABILITY exchange inside imaplib's constructor are counted too: every byte read
or sent counts in imap_bytes_received/imap_bytes_sent, and every tagged response line in
imap_responses{response,code}. Metric hooks go through metrics.safely: they never break a session.
"""

from __future__ import annotations

import imaplib
import re
import socket
import ssl

from imapclient import IMAPClient, exceptions, imap4, tls
from imapclient.imapclient import seq_to_parenstr_upper
from imapclient.response_parser import parse_fetch_response

from shared.metrics import definitions as metrics

# Response codes of RFC 3501/5530/4315/7162 and common vendor codes; any other becomes "OTHER",
# so a server cannot grow the label set without bound.
KNOWN_CODES = frozenset((
    "ALERT", "BADCHARSET", "CAPABILITY", "PARSE", "PERMANENTFLAGS", "READ-ONLY", "READ-WRITE",
    "TRYCREATE", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "UNAVAILABLE", "AUTHENTICATIONFAILED",
    "AUTHORIZATIONFAILED", "EXPIRED", "PRIVACYREQUIRED", "CONTACTADMIN", "NOPERM", "INUSE",
    "EXPUNGEISSUED", "CORRUPTION", "SERVERBUG", "CLIENTBUG", "CANNOT", "LIMIT", "OVERQUOTA",
    "ALREADYEXISTS", "NONEXISTENT", "APPENDUID", "COPYUID", "UIDNOTSTICKY", "HIGHESTMODSEQ",
    "NOMODSEQ", "MODIFIED", "CLOSED", "COMPRESSIONACTIVE", "USEATTR", "NOTSAVED", "HASCHILDREN",
    "WEBALERT", "THROTTLED", "ALREADYEXISTS", "NOTFOUND"))
_TAGGED = re.compile(rb"^\S+ (OK|NO|BAD)(?: \[([A-Za-z0-9-]+))?")


def response_labels(line: bytes) -> tuple[str, str] | None:
    """(response, code) of a tagged response line, or None if the line is not one."""
    match = _TAGGED.match(line)
    if not match:
        return None
    code = (match.group(2) or b"").decode("ascii").upper()
    if code and code not in KNOWN_CODES:
        code = "OTHER"
    return match.group(1).decode("ascii"), code


def _count_response(response: str, code: str) -> None:
    metrics.imap_responses.labels(response=response, code=code).inc()


class _Metered:
    """Mixin over imaplib.IMAP4: counts bytes both ways and tagged responses."""

    def read(self, size):
        data = super().read(size)
        metrics.safely(metrics.imap_bytes_received.inc, len(data))
        return data

    def readline(self):
        line = super().readline()
        metrics.safely(metrics.imap_bytes_received.inc, len(line))
        return line

    def send(self, data):
        super().send(data)
        metrics.safely(metrics.imap_bytes_sent.inc, len(data))

    def _get_line(self):
        line = super()._get_line()
        if line[:1] not in (b"*", b"+") and line.startswith(self.tagpre):
            labels = response_labels(line)
            if labels:
                metrics.safely(_count_response, *labels)
        return line


class _MeteredPlain(_Metered, imap4.IMAP4WithTimeout):
    pass


class _MeteredTLS(_Metered, tls.IMAP4_TLS):
    pass


class MeteredIMAPClient(IMAPClient):
    def fetch_all(self, data: list[str], modifiers: list[str] | None = None) -> dict:
        """UID FETCH 1:* (imapclient's fetch() keeps only the UIDs it was given as numbers)."""
        args = ["UID", "FETCH", "1:*", seq_to_parenstr_upper(data)]
        if modifiers:
            args.append(seq_to_parenstr_upper(modifiers))
        tag = self._imap._command(*args)
        typ, data = self._imap._command_complete("FETCH", tag)
        self._checkok("fetch", typ, data)
        typ, data = self._imap._untagged_response(typ, data, "FETCH")
        return parse_fetch_response(data, self.normalise_times, True)

    def _create_IMAP4(self):
        connect_timeout = getattr(self._timeout, "connect", None)
        if self.ssl:
            return _MeteredTLS(self.host, self.port, self.ssl_context, connect_timeout)
        return _MeteredPlain(self.host, self.port, connect_timeout)


# -- failures, grouped by what the session does about them -------------------------------------

class AuthFailed(Exception):
    """The server refused the credentials: state authenticationError, retry slowly."""

    def __init__(self, response: str, code: str):
        super().__init__(response)
        self.response = response
        self.code = code


class ConnectFailed(Exception):
    """No session could be set up (refused, timeout, TLS, greeting): state connectError, back off."""

    def __init__(self, response: str, code: str = ""):
        super().__init__(response)
        self.response = response
        self.code = code


# A live session that ends: drop the connection and connect again (after a short backoff).
CONNECTION_LOST = (imaplib.IMAP4.abort, OSError, socket.timeout, ssl.SSLError, EOFError)
# The server said NO/BAD to a command, or spoke something unexpected: reconnect as well.
PROTOCOL_ERRORS = (imaplib.IMAP4.error, exceptions.IMAPClientError)

_CODE = re.compile(r"\[([A-Za-z0-9-]+)")


def login_failure(exc: Exception) -> AuthFailed:
    text = str(exc)
    for prefix in ("b'", 'b"'):  # imapclient formats the server's bytes with repr()
        if text.startswith(prefix):
            text = text[2:-1]
    match = _CODE.search(text)
    return AuthFailed(text[:300], match.group(1).upper() if match else "")


def login(client: IMAPClient, user: str, password: str) -> None:
    """Log in; raises AuthFailed. imaplib sends LOGIN as ASCII only: other credentials go as UTF-8
    through AUTHENTICATE PLAIN (RFC 4616) when the server offers it, and are refused otherwise
    (with a message that quotes nothing of them)."""
    try:
        if (user + password).isascii():
            client.login(user, password)
        elif b"AUTH=PLAIN" in client.capabilities():
            client.plain_login(user, password)
        else:
            raise AuthFailed("The user name or password has non-ASCII characters, and the server "
                             "offers no AUTH=PLAIN to send them", "")
    except exceptions.LoginError as exc:
        raise login_failure(exc) from None


def connect(host: str, port: int, secure: bool, timeout: float) -> MeteredIMAPClient:
    """A connected client (greeting read), upgraded with STARTTLS when it is not `secure` (TLS from
    the start) and the server offers it, as EmailEngine does: credentials never go in clear text
    to a server that can do better. The certificate is verified either way. Raises ConnectFailed."""
    client = None
    try:
        client = MeteredIMAPClient(host, port=port, ssl=secure, timeout=timeout)
        if not secure and b"STARTTLS" in client.capabilities():
            client.starttls(tls.create_default_context())
        return client
    except CONNECTION_LOST + PROTOCOL_ERRORS as exc:
        if client is not None:
            _shutdown_quietly(client)
        raise ConnectFailed(_describe(exc)) from None


def _shutdown_quietly(client: IMAPClient) -> None:
    try:
        client.shutdown()
    except Exception:  # noqa: BLE001 - the connection may be half gone already
        pass


def _describe(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    return f"{type(exc).__name__}: {exc}"[:300]


def describe(exc: Exception) -> str:
    return _describe(exc)
