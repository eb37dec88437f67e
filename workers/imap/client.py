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
from typing import NamedTuple

import gevent
from imapclient import IMAPClient, exceptions, imap4, tls
from imapclient.imapclient import seq_to_parenstr_upper

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


class Row(NamedTuple):
    """One message of a FETCH (UID FLAGS) answer."""
    seq: int
    uid: int
    flags: tuple[bytes, ...]


YIELD_LINES = 100
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
    """Mixin over imaplib.IMAP4: counts bytes both ways and tagged responses, and yields to the
    process's other greenlets every YIELD_LINES lines read (a long answer arrives buffered, and
    reading buffered data never waits, so it would hold the process for its whole length)."""

    _lines = 0

    def read(self, size):
        data = super().read(size)
        metrics.safely(metrics.imap_bytes_received.inc, len(data))
        return data

    def readline(self):
        line = super().readline()
        metrics.safely(metrics.imap_bytes_received.inc, len(line))
        self._lines += 1
        if self._lines % YIELD_LINES == 0:
            gevent.sleep(0)
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
    """IMAPClient plus the few commands the sync needs that imapclient does not offer as such:
    EXAMINE with QRESYNC parameters, FETCH (UID FLAGS) over sequence numbers or UIDs read by a
    quick parser, and the expunges a command reported on the side."""

    def examine(self, path: str, qresync: tuple[int, int] | None = None) -> dict:
        """EXAMINE (read-only SELECT); with qresync=(uidvalidity, modseq) on a QRESYNC-enabled
        connection the answer also holds b"VANISHED" (UIDs expunged since modseq, a sequence-set
        text) and b"CHANGED" (UID -> FLAGS of messages changed since modseq)."""
        argument = self._normalise_folder(path)
        if qresync:
            argument += b" (QRESYNC (%d %d))" % qresync
        self._command_and_check("select", argument, True)  # imaplib flushes older responses
        responses = self._imap.untagged_responses
        vanished = responses.pop("VANISHED", [])
        changed = responses.pop("FETCH", [])
        info = self._process_select_response(responses)
        info[b"VANISHED"] = [v.decode("ascii") if isinstance(v, bytes) else v for v in vanished]
        info[b"CHANGED"] = parse_uid_flags(changed)
        return info

    def fetch_flags(self, messages: str, uid: bool, modifiers: list[str] | None = None) -> list[Row]:
        """(seq, uid, flags) of the messages of a set (`1:1000`, `5,9,12`; UIDs when `uid`)."""
        return parse_uid_flags(self._fetch_lines(messages, ["FLAGS"], uid, modifiers))

    def _fetch_lines(self, messages: str, data: list[str], uid: bool, modifiers: list[str] | None) -> list:
        args = (["UID"] if uid else []) + ["FETCH", messages, seq_to_parenstr_upper(["UID", *data])]
        if modifiers:
            args.append(seq_to_parenstr_upper(modifiers))
        self._imap.untagged_responses.pop("FETCH", None)
        tag = self._imap._command(*args)
        typ, lines = self._imap._command_complete("FETCH", tag)
        self._checkok("fetch", typ, lines)
        return self._imap._untagged_response(typ, lines, "FETCH")[1]

    def search_uids(self, first: int, last: int | str) -> list[int]:
        """UIDs from `first` to `last` (UID SEARCH UID first:last; `n:*` always matches the last
        message, so the caller filters)."""
        return [u for u in self.search(["UID", f"{first}:{last}"]) if u >= first]

    def expunged_meanwhile(self) -> bool:
        """Whether the server reported messages gone (EXPUNGE/VANISHED) since it was last asked."""
        responses = self._imap.untagged_responses
        expunged = responses.pop("EXPUNGE", None)
        vanished = responses.pop("VANISHED", None)
        return bool(expunged or vanished)

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
_SEQ = re.compile(rb"(\d+) \(")
_UID = re.compile(rb"\bUID (\d+)")
_FLAGS = re.compile(rb"\bFLAGS \(([^)]*)\)")


def parse_uid_flags(lines: list) -> list[Row]:
    """(seq, uid, flags) of FETCH lines with UID and FLAGS (`12 (UID 345 FLAGS (\\Seen) MODSEQ (9))`).

    Flags are atoms (never literals), so a regular expression reads them; it is many times
    quicker than imapclient's general parser, which matters for chunks of a 500,000-message
    mailbox. Lines without both (unsolicited, partial) are skipped.
    """
    rows = []
    for line in lines:
        if not isinstance(line, bytes):  # a literal somewhere: not a plain UID/FLAGS answer
            continue
        seq, uid, flags = _SEQ.match(line), _UID.search(line), _FLAGS.search(line)
        if seq and uid and flags:
            rows.append(Row(int(seq.group(1)), int(uid.group(1)), tuple(flags.group(1).split())))
    return rows


def parse_sequence_set(text: str) -> list[tuple[int, int]]:
    """`(EARLIER) 1:3,7` -> [(1, 3), (7, 7)]: the UID ranges of a VANISHED response."""
    text = text.replace("(EARLIER)", "").strip()
    ranges = []
    for part in filter(None, text.split(",")):
        low, _, high = part.partition(":")
        first, last = int(low), int(high or low)
        ranges.append((min(first, last), max(first, last)))
    return ranges


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
