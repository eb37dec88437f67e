"""Where an event's webhook goes, decided once, when it is emitted (DESIGN section 4).

The account's own `webhooks` URL, else the global one (settings). The answer is stored with the
job (jobs.py reads it), so a later settings change or the account's deletion never sends an
event already queued to another receiver. An event of a deleted account (its record gone, its
tombstone there) goes nowhere: never to the global URL, which may be another party's receiver.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import redis
from urllib3.util import parse_url

from .keys import Keys

_MISSING = object()
URL_FIELD = "mp_url"  # job hash fields (beside rq's own): the URL, and its target key
TARGET_FIELD = "mp_target"
OVERRIDE_FIELD = "mp_override"  # "1" when the URL is the account's own


@dataclass(frozen=True)
class Target:
    url: str  # "" = nobody (no URL configured, or the account was deleted)
    override: bool  # the account's own URL rather than the global one

    @property
    def key(self) -> str:
        return target_key(self.url)

    def fields(self) -> dict[str, str]:
        return {URL_FIELD: self.url, TARGET_FIELD: self.key, OVERRIDE_FIELD: "1" if self.override else "0"}


def target_key(url: str) -> str:
    """scheme://host:port of a URL (no user info, path or query): what per-target caps count."""
    if not url:
        return ""
    try:
        parts = parse_url(url)
    except ValueError:
        return "invalid"
    scheme = (parts.scheme or "").lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return f"{scheme}://{(parts.host or '').lower()}:{port}"


def resolve(conn: redis.Redis, keys: Keys, account: str | None, account_url=_MISSING) -> Target:
    """The target of an event of `account` now. `account_url` (the account's `webhooks`, None
    when it has none) is given when the caller holds the record, e.g. for accountDeleted."""
    pipe = conn.pipeline(transaction=False)
    pipe.hget(keys.settings, "webhooks")
    if account and account_url is _MISSING:
        pipe.hget(keys.account(account), "webhooks")
        pipe.zscore(keys.accounts, account)  # listed: the record is live
        pipe.zscore(keys.account_tombstones, account)
    replies = pipe.execute()
    global_url = json.loads(replies[0]) if replies[0] else ""
    if account and account_url is _MISSING:
        own, listed, tombstone = replies[1:]
        if listed is None and tombstone is not None:
            return Target("", False)  # deleted: its own URL is gone, and the global one is not its
        account_url = own.decode() if own else None
    if account and account_url:
        return Target(account_url, True)
    return Target(global_url or "", False)
