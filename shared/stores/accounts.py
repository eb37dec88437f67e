"""The account store: every IMAP account's record in Redis, shared by the API and the IMAP workers.

Redis layout (all under REDIS_PREFIX, names in shared.keys):
- `accounts`: sorted set of account ids, scored by creation time (pages of the list);
- `account:<id>`: hash with account, name, email, webhooks (the per-account webhook URL the
  webhook workers read), imap (JSON without the password), imapPass (encrypted), smtp and
  smtpPass likewise (the submit workers read them), created,
  state and lastError (written by the IMAP worker that holds the account);
- `account:<id>:*`: the IMAP worker's sync state and lease, named in shared.keys; deleted by
  those names with the account (the mailboxes hash names the per-mailbox keys), never by SCAN;
- `smtp-accounts`: set of the ids of accounts with SMTP settings (/health wants a submit worker);
- `account-log`: sorted set id -> sequence number (`account-log-seq`) of the account's last
  change (added, updated, deleted, reconnect): IMAP processes read what changed since they last
  looked, so no change is lost and none costs a read of every account;
- `account-changes`: pub/sub channel, JSON `{"account", "action", "seq"}` with action added,
  updated, deleted or reconnect: the fast path (pub/sub loses messages while a subscriber is
  disconnected; the log does not).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import redis

from ..keys import Keys
from . import account_input
from .credentials import Cipher
from .leases import LeaseTable

STATES = ("init", "connecting", "connected", "syncing", "authenticationError", "connectError",
          "disconnected", "unset")
BATCH = 1000  # commands per pipeline round trip when every account is read
PUBLIC_FIELDS = ("account", "name", "email", "webhooks", "state", "created")

# Create atomically: an id that exists is refused, and the record never exists half-written.
# KEYS: accounts, record, free (shared/stores/leases.py), log, log seq. Returns the log's sequence
# number, 0 if the id is taken.
_CREATE = """
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], unpack(ARGV, 3))
redis.call('SADD', KEYS[3], ARGV[1])
local seq = redis.call('INCR', KEYS[5])
redis.call('ZADD', KEYS[4], seq, ARGV[1])
return seq
"""

# KEYS: log, log seq. ARGV: id. Returns the change's sequence number.
_LOG = """
local seq = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], seq, ARGV[1])
return seq
"""

# KEYS: log, tombstones, accounts. ARGV: now, keep seconds. Deleted accounts leave the log once
# every IMAP process has long seen their deletion (a re-created id is kept).
_TRIM = """
local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1] - ARGV[2], 'LIMIT', 0, 100)
for _, id in ipairs(old) do
  if not redis.call('ZSCORE', KEYS[3], id) then redis.call('ZREM', KEYS[1], id) end
  redis.call('ZREM', KEYS[2], id)
end
return #old
"""
TOMBSTONE_SECONDS = 86400


# Change a record only while the account exists: a write racing a DELETE never leaves an orphan
# hash behind (with an encrypted password in it). ARGV: id, n, n fields to delete, field/value pairs.
_CHANGE = """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
local n = tonumber(ARGV[2])
if n > 0 then redis.call('HDEL', KEYS[2], unpack(ARGV, 3, 2 + n)) end
if #ARGV > 2 + n then redis.call('HSET', KEYS[2], unpack(ARGV, 3 + n)) end
return 1
"""


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    secure: bool  # TLS from the first byte (465); else STARTTLS whenever offered
    user: str | None  # None: no AUTH (a relay trusting the client)
    password: str | None

    def __repr__(self) -> str:  # never let the password reach a log line
        return f"SmtpSettings(host={self.host!r}, port={self.port}, secure={self.secure}, user={self.user!r})"


class AccountExists(Exception):
    """POST of an id that is already taken (the API answers 409)."""


@dataclass(frozen=True)
class ImapSettings:
    host: str
    port: int
    secure: bool
    user: str
    password: str

    def __repr__(self) -> str:  # never let the password reach a log line
        return f"ImapSettings(host={self.host!r}, port={self.port}, secure={self.secure}, user={self.user!r})"


def effective_state(recorded: str, held: bool) -> str:
    """The state to show: what the holding IMAP process recorded, while one holds the account.

    An account that no live process holds (none running, or its holder died and the lease
    expired) is `disconnected`, whatever its last holder wrote; `init` (never picked up yet)
    and `unset` (no IMAP) stay as they are.
    """
    if recorded not in STATES:
        return "init"
    if held or recorded in ("init", "unset"):
        return recorded
    return "disconnected"


def _text(raw: dict, name: str) -> str:
    value = raw.get(name.encode())
    return value.decode() if value is not None else ""


class AccountStore:
    def __init__(self, conn: redis.Redis, keys: Keys, secret: str):
        self.conn = conn
        self.keys = keys
        self.cipher = Cipher(secret)
        self._create = conn.register_script(_CREATE)
        self._change_script = conn.register_script(_CHANGE)
        self._log = conn.register_script(_LOG)
        self._trim = conn.register_script(_TRIM)
        self.leases = LeaseTable(conn, keys)

    # -- API side -------------------------------------------------------------------------------
    def create(self, body) -> dict:
        """Validate and save a new account; returns its public view. Raises InputError, AccountExists."""
        account = account_input.new_account(body)
        fields = self._record_fields(account)
        fields.update(account=account["account"], created=str(int(time.time() * 1000)),
                      state="init" if account["imap"] else "unset")
        args = [account["account"], time.time()] + [item for pair in fields.items() for item in pair]
        keys = [self.keys.accounts, self.keys.account(account["account"]), self.keys.imap_free,
                self.keys.account_log, self.keys.account_log_seq]
        seq = self._create(keys=keys, args=args)
        if not seq:
            raise AccountExists(account["account"])
        if account.get("smtp"):
            self.conn.sadd(self.keys.smtp_accounts, account["account"])
        self._publish(account["account"], "added", seq)
        return self.get(account["account"])

    def update(self, account_id: str, body) -> dict | None:
        if not account_input.valid_id(account_id):
            return None
        raw = self.conn.hgetall(self.keys.account(account_id))
        if not raw:
            return None
        previous = self._imap_with_password(raw)
        changes = account_input.account_update(body, previous, self._with_password(raw, "smtp"))
        if changes:
            fields = self._record_fields(changes)
            imap_off = "imap" in changes and changes["imap"] is None
            smtp_off = "smtp" in changes and changes["smtp"] is None
            if imap_off:
                fields["state"] = "unset"
            remove = (("imap", "imapPass") if imap_off else ()) + (("smtp", "smtpPass") if smtp_off else ())
            if not self._change(account_id, fields, remove):
                return None  # deleted meanwhile
            if changes.get("smtp"):
                self.conn.sadd(self.keys.smtp_accounts, account_id)
            elif smtp_off:
                self.conn.srem(self.keys.smtp_accounts, account_id)
            self._changed(account_id, "updated")
        return self.get(account_id)

    def delete(self, account_id: str) -> bool:
        if not account_input.valid_id(account_id):
            return False
        removed = self.conn.zrem(self.keys.accounts, account_id)
        self.conn.srem(self.keys.smtp_accounts, account_id)
        self.leases.forget(account_id)
        paths = [p.decode() for p in self.conn.hkeys(self.keys.account_mailboxes(account_id))]
        names = self.keys.account_keys(account_id, paths)
        for start in range(0, len(names), 500):
            self.conn.delete(*names[start:start + 500])
        if removed:
            now = time.time()
            pipe = self.conn.pipeline()
            pipe.zadd(self.keys.account_tombstones, {account_id: now})
            self._trim(keys=[self.keys.account_log, self.keys.account_tombstones, self.keys.accounts],
                       args=[now, TOMBSTONE_SECONDS], client=pipe)
            pipe.execute()
            self._changed(account_id, "deleted")
        return bool(removed)

    def request_reconnect(self, account_id: str) -> bool:
        if not self.exists(account_id):
            return False
        self._changed(account_id, "reconnect")
        return True

    # -- the change log (IMAP workers) -----------------------------------------------------------
    def change_seq(self) -> int:
        """The sequence number of the latest account change."""
        return int(self.conn.get(self.keys.account_log_seq) or 0)

    def changes_since(self, seq: int) -> list[tuple[str, int]]:
        """(account id, sequence number) of every account changed after `seq`, oldest first."""
        return [(m.decode(), int(score)) for m, score in
                self.conn.zrangebyscore(self.keys.account_log, f"({seq}", "+inf", withscores=True)]

    def get(self, account_id: str) -> dict | None:
        if not account_input.valid_id(account_id):
            return None
        raw = self.conn.hgetall(self.keys.account(account_id))
        return self._public(raw, self.leases.held([account_id])[0]) if raw else None

    def exists(self, account_id: str) -> bool:
        if not account_input.valid_id(account_id):
            return False
        return self.conn.zscore(self.keys.accounts, account_id) is not None

    def list(self, page: int = 0, page_size: int = 20) -> dict:
        total = self.conn.zcard(self.keys.accounts)
        ids = [i.decode() for i in self.conn.zrange(self.keys.accounts, page * page_size,
                                                        (page + 1) * page_size - 1)]
        pipe = self.conn.pipeline()
        for account_id in ids:
            pipe.hgetall(self.keys.account(account_id))
        records = pipe.execute()
        accounts = [self._public(raw, held) for raw, held in zip(records, self.held(ids), strict=True) if raw]
        return {"total": total, "page": page, "pages": max(1, -(-total // page_size)),
                "accounts": accounts}

    def ids(self) -> list[str]:
        return [i.decode() for i in self.conn.zrange(self.keys.accounts, 0, -1)]

    def held(self, ids: list[str]) -> list[bool]:
        """Whether a live IMAP process holds each account."""
        return self.leases.held(ids) if ids else []

    def unheld(self) -> int:
        """How many accounts no live IMAP process holds (the scrape's count; a few commands)."""
        return self.leases.unheld()

    def count_by_state(self) -> dict[str, int]:
        counts = dict.fromkeys(STATES, 0)
        ids = self.ids()
        pipe = self.conn.pipeline(transaction=False)
        for account_id in ids:
            pipe.hget(self.keys.account(account_id), "state")
        for state, held in zip(pipe.execute(), self.held(ids), strict=True):
            counts[effective_state(state.decode() if state else "init", held)] += 1
        return counts

    # -- IMAP and submit worker side ----------------------------------------------------------
    def record(self, account_id: str) -> dict:
        """The account's stored hash, for callers that need both servers' settings of one read."""
        return self.conn.hgetall(self.keys.account(account_id))

    def imap_settings(self, account_id: str, record: dict | None = None) -> ImapSettings | None:
        """The account's IMAP settings with the decrypted password; None when IMAP is off or gone.
        `record`: the account's hash (AccountStore.record) when the caller read it already.

        Raises CredentialsUnreadable when the stored password was encrypted with another secret.
        """
        imap = self._imap_with_password(self.record(account_id) if record is None else record)
        if imap is None:
            return None
        return ImapSettings(imap["host"], imap["port"], imap["secure"], imap["auth"]["user"],
                            imap["auth"]["pass"])

    def smtp_settings(self, account_id: str, record: dict | None = None) -> SmtpSettings | None:
        """The account's SMTP settings, password decrypted; None when it has none or is gone.
        `record`: as for imap_settings.

        Raises CredentialsUnreadable when the stored password was encrypted with another secret.
        """
        smtp = self._with_password(self.record(account_id) if record is None else record, "smtp")
        if smtp is None:
            return None
        auth = smtp.get("auth") or {}
        return SmtpSettings(smtp["host"], smtp["port"], smtp["secure"], auth.get("user"), auth.get("pass"))

    def with_smtp(self) -> int:
        """How many accounts have SMTP settings."""
        return self.conn.scard(self.keys.smtp_accounts)

    def set_state(self, account_id: str, state: str, error: dict | None = None) -> None:
        """Record the state the holding worker sees; `error` replaces lastError when given."""
        if state not in STATES:
            raise ValueError(f"unknown account state {state!r}")
        fields = {"state": state}
        if error is not None:
            fields["lastError"] = json.dumps(error)
        self._change(account_id, fields)  # does nothing once the account is deleted

    def set_sync_errors(self, account_id: str, errors: dict[str, str]) -> None:
        """Record the folders the holding worker could not sync (path -> the server's answer)."""
        self._change(account_id, {"syncErrors": json.dumps(errors)})

    def _change(self, account_id: str, fields: dict, remove=()) -> bool:
        args = [account_id, len(remove), *remove, *(item for pair in fields.items() for item in pair)]
        return bool(self._change_script(keys=[self.keys.accounts, self.keys.account(account_id)], args=args))

    # -- helpers --------------------------------------------------------------------------------
    def _record_fields(self, account: dict) -> dict:
        fields = {name: account[name] for name in ("name", "email", "webhooks") if name in account}
        for server in ("imap", "smtp"):
            settings = account.get(server)
            if not settings:
                continue
            auth = settings.get("auth")
            fields[server] = json.dumps(dict(settings, auth={"user": auth["user"]} if auth else None))
            fields[server + "Pass"] = self.cipher.encrypt(auth["pass"]) if auth else ""
        return fields

    def _imap_with_password(self, raw: dict) -> dict | None:
        return self._with_password(raw, "imap")

    def _with_password(self, raw: dict, server: str) -> dict | None:
        """The stored `imap` or `smtp` settings with the password decrypted into auth.pass."""
        if not raw or not raw.get(server.encode()):
            return None
        settings = json.loads(raw[server.encode()])
        if settings.get("auth"):
            settings["auth"]["pass"] = self.cipher.decrypt(raw[(server + "Pass").encode()])
        return settings

    def _public(self, raw: dict, held: bool) -> dict:
        view = {name: _text(raw, name) for name in PUBLIC_FIELDS}
        view["state"] = effective_state(view["state"] or "init", held)
        view["created"] = int(view["created"] or 0)
        view["webhooks"] = view["webhooks"] or None
        view["imap"] = json.loads(raw[b"imap"]) if raw.get(b"imap") else None
        view["smtp"] = json.loads(raw[b"smtp"]) if raw.get(b"smtp") else None
        view["lastError"] = json.loads(raw[b"lastError"]) if raw.get(b"lastError") else None
        view["syncErrors"] = json.loads(raw[b"syncErrors"]) if raw.get(b"syncErrors") else {}
        return view

    def _changed(self, account_id: str, action: str) -> None:
        seq = self._log(keys=[self.keys.account_log, self.keys.account_log_seq], args=[account_id])
        self._publish(account_id, action, seq)

    def _publish(self, account_id: str, action: str, seq: int) -> None:
        message = {"account": account_id, "action": action, "seq": int(seq)}
        self.conn.publish(self.keys.account_changes, json.dumps(message))
