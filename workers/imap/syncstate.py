"""One account's sync state in Redis, every key under `account:<id>:` (deleted with the account).

Keys (after `Keys.account(id)`):
- `:mailboxes`   hash path -> JSON {uidvalidity, uidnext, exists, modseq} as last synced;
- `:uids:<path>` hash uid -> the message's flags (space-separated), for every known message;
- `:status`      hash: initialized (first sync done), authenticated (a login ever succeeded),
                 authError / connectError (the last error announced, so each distinct error
                 is announced once, across retries and restarts).

Nothing of this is kept in the process between syncs: 1,000 accounts per process stay small, and
whoever holds the account next (after a restart or a takeover) continues from the same point.
"""

from __future__ import annotations

import json

import redis

from shared.keys import Keys


class SyncState:
    def __init__(self, conn: redis.Redis, keys: Keys, account_id: str):
        self.conn = conn
        base = keys.account(account_id)
        self.mailboxes_key = base + ":mailboxes"
        self.status_key = base + ":status"
        self._uids_prefix = base + ":uids:"

    # -- mailboxes -----------------------------------------------------------------------------
    def mailboxes(self) -> dict[str, dict]:
        return {k.decode(): json.loads(v) for k, v in self.conn.hgetall(self.mailboxes_key).items()}

    def mailbox(self, path: str) -> dict | None:
        raw = self.conn.hget(self.mailboxes_key, path)
        return json.loads(raw) if raw else None

    def save_mailbox(self, path: str, meta: dict) -> None:
        self.conn.hset(self.mailboxes_key, path, json.dumps(meta))

    def forget_mailbox(self, path: str) -> None:
        pipe = self.conn.pipeline()
        pipe.hdel(self.mailboxes_key, path)
        pipe.delete(self.uids_key(path))
        pipe.execute()

    # -- messages ------------------------------------------------------------------------------
    def uids_key(self, path: str) -> str:
        return self._uids_prefix + path

    def known(self, path: str) -> dict[int, str]:
        return {int(k): v.decode() for k, v in self.conn.hgetall(self.uids_key(path)).items()}

    def replace_all(self, path: str, flags_by_uid: dict[int, str], meta: dict) -> None:
        """Baseline a mailbox (first sight, or new UIDVALIDITY): its messages now, no events."""
        pipe = self.conn.pipeline()
        pipe.delete(self.uids_key(path))
        items = list(flags_by_uid.items())
        for start in range(0, len(items), 1000):
            pipe.hset(self.uids_key(path), mapping=dict(items[start:start + 1000]))
        pipe.hset(self.mailboxes_key, path, json.dumps(meta))
        pipe.execute()

    def remember(self, path: str, uid: int, flags: str) -> None:
        self.conn.hset(self.uids_key(path), uid, flags)

    def forget(self, path: str, uid: int) -> None:
        self.conn.hdel(self.uids_key(path), uid)

    # -- status --------------------------------------------------------------------------------
    def status(self) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in self.conn.hgetall(self.status_key).items()}

    def set_status(self, **fields: str) -> None:
        self.conn.hset(self.status_key, mapping=fields)

    def clear_status(self, *names: str) -> None:
        self.conn.hdel(self.status_key, *names)
