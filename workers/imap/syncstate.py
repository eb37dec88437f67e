"""One account's sync state in Redis, every key named in shared.keys (deleted with the account).

Keys (names from `Keys.account_*`):
- `:mailboxes`      hash path -> JSON {uidvalidity, uidnext, exists, modseq, indexed, partial} as
                    last synced; its fields are also what names the per-mailbox keys below;
- `:uids:<path>`    hash uid -> the message's flags (space-separated), for every known message;
- `:index:<path>`   sorted set of the known UIDs (score = UID): counts, ranges and ranks, so that
                    no change needs the whole mailbox read from Redis;
- `:status`         hash: initialized (first sync done), authenticated (a login ever succeeded),
                    authError / connectError (the last error announced, so each distinct error
                    is announced once, across retries and restarts).

A mailbox is registered in `:mailboxes` before any of its keys is written (a baseline in progress
is marked `partial`), so deleting an account by key names never leaves one behind.

Nothing of this is kept in the process between syncs: 1,000 accounts per process stay small, and
whoever holds the account next (after a restart or a takeover) continues from the same point.
"""

from __future__ import annotations

import json

import gevent
import redis

from shared.keys import Keys

CHUNK = 1000  # messages per Redis pipeline when many are written or read at once


class SyncState:
    def __init__(self, conn: redis.Redis, keys: Keys, account_id: str):
        self.conn = conn
        self.keys = keys
        self.account_id = account_id
        self.mailboxes_key = keys.account_mailboxes(account_id)
        self.status_key = keys.account_status(account_id)

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
        pipe.delete(self.flags_key(path), self.index_key(path))
        pipe.execute()

    def start_baseline(self, path: str, meta: dict) -> None:
        """Register the mailbox as being baselined and clear what was known of it."""
        pipe = self.conn.pipeline()
        pipe.hset(self.mailboxes_key, path, json.dumps(dict(meta, partial=True)))
        pipe.delete(self.flags_key(path), self.index_key(path))
        pipe.execute()

    # -- messages ------------------------------------------------------------------------------
    def flags_key(self, path: str) -> str:
        return self.keys.account_flags(self.account_id, path)

    def index_key(self, path: str) -> str:
        return self.keys.account_index(self.account_id, path)

    def count(self, path: str) -> int:
        return self.conn.zcard(self.index_key(path))

    def flags_of(self, path: str, uids: list[int]) -> dict[int, str | None]:
        """The known flags of these UIDs (None: not known), in chunks."""
        result: dict[int, str | None] = {}
        for start in range(0, len(uids), CHUNK):
            batch = uids[start:start + CHUNK]
            values = self.conn.hmget(self.flags_key(path), batch)
            for uid, value in zip(batch, values, strict=True):
                result[uid] = value.decode() if value is not None else None
        return result

    def known_between(self, path: str, low: int | str, high: int | str) -> list[int]:
        """Known UIDs from low to high, both included ("-inf"/"+inf" allowed; "(" excludes)."""
        return [int(u) for u in self.conn.zrangebyscore(self.index_key(path), low, high)]

    def ranks(self, path: str, uids: list[int]) -> list[int | None]:
        """Position (0-based) of each UID among the known ones, None where it is not known."""
        pipe = self.conn.pipeline(transaction=False)
        for uid in uids:
            pipe.zrank(self.index_key(path), uid)
        return pipe.execute()

    def remember(self, path: str, flags_by_uid: dict[int, str]) -> None:
        items = list(flags_by_uid.items())
        for start in range(0, len(items), CHUNK):
            batch = dict(items[start:start + CHUNK])
            pipe = self.conn.pipeline(transaction=False)
            pipe.hset(self.flags_key(path), mapping=batch)
            pipe.zadd(self.index_key(path), {str(u): u for u in batch})
            pipe.execute()
            if start + CHUNK < len(items):
                gevent.sleep(0)  # a big write lets the process's other greenlets run

    def forget(self, path: str, uids: list[int]) -> None:
        for start in range(0, len(uids), CHUNK):
            batch = uids[start:start + CHUNK]
            pipe = self.conn.pipeline(transaction=False)
            pipe.hdel(self.flags_key(path), *batch)
            pipe.zrem(self.index_key(path), *batch)
            pipe.execute()

    def build_index(self, path: str) -> None:
        """State written before the index existed: index the known UIDs once (in chunks)."""
        cursor = 0
        while True:
            cursor, batch = self.conn.hscan(self.flags_key(path), cursor, count=CHUNK)
            if batch:
                self.conn.zadd(self.index_key(path), {k: int(k) for k in batch})
            if cursor == 0:
                return
            gevent.sleep(0)

    # -- status --------------------------------------------------------------------------------
    def status(self) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in self.conn.hgetall(self.status_key).items()}

    def set_status(self, **fields: str) -> None:
        self.conn.hset(self.status_key, mapping=fields)

    def clear_status(self, *names: str) -> None:
        self.conn.hdel(self.status_key, *names)
