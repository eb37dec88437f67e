"""Runtime settings changed through the API (`/v1/settings`), kept in one Redis hash.

Unlike shared.config (process settings read at start), these apply to every process at once and
take effect on the next delivery. Values are stored as JSON. `validate` checks a whole update
before anything is written, so an update with one bad field changes nothing.

The webhook error flag lives here too: the last final delivery failure, shown by the API until
the next successful delivery clears it.
"""

from __future__ import annotations

import json
import time
from urllib.parse import urlsplit

import redis

from ..errors import InputError
from ..event_names import EVENTS
from ..keys import Keys

DEFAULTS = {"webhooks": "", "webhooksEnabled": False, "webhookEvents": ["*"]}
MAX_URL_LENGTH = 2048


class SettingsError(InputError):
    """A settings update that cannot be saved."""


def webhook_url(value) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string (an http:// or https:// URL, or empty)")
    value = value.strip()
    if not value:
        return ""
    if len(value) > MAX_URL_LENGTH:
        raise ValueError(f"is longer than {MAX_URL_LENGTH} characters")
    parts = urlsplit(value)
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ValueError("has an invalid port") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    return value


def boolean(value) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _event_list(value) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError('must be a list of event names, or ["*"]')
    unknown = [v for v in value if v != "*" and v not in EVENTS]
    if unknown:
        raise ValueError(f"unknown event {unknown[0]!r}; known: *, {', '.join(EVENTS)}")
    return list(dict.fromkeys(value))


VALIDATORS = {"webhooks": webhook_url, "webhooksEnabled": boolean, "webhookEvents": _event_list}


def validate(update) -> dict:
    """The cleaned update, or SettingsError naming every bad or unknown field."""
    if not isinstance(update, dict):
        raise SettingsError({"body": "must be a JSON object"})
    clean, problems = {}, {}
    for name, value in update.items():
        check = VALIDATORS.get(name)
        if check is None:
            problems[name] = "is not a known setting"
            continue
        try:
            clean[name] = check(value)
        except ValueError as exc:
            problems[name] = str(exc)
    if problems:
        raise SettingsError(problems)
    return clean


class SettingsStore:
    def __init__(self, conn: redis.Redis, keys: Keys):
        self.conn = conn
        self.keys = keys

    def get_all(self) -> dict:
        return decode(self.conn.hgetall(self.keys.settings))

    def update(self, update) -> dict:
        """Validate then save in one write; returns the cleaned values that were saved."""
        clean = validate(update)
        if clean:
            self.conn.hset(self.keys.settings, mapping={k: json.dumps(v) for k, v in clean.items()})
        return clean

    def webhook_error(self) -> dict | None:
        raw = self.conn.get(self.keys.webhook_error)
        return json.loads(raw) if raw else None


def decode(raw: dict) -> dict:
    """Settings from a raw HGETALL reply, with defaults for what was never set."""
    values = dict(DEFAULTS)
    for name, value in raw.items():
        name = name.decode() if isinstance(name, bytes) else name
        if name in DEFAULTS:
            values[name] = json.loads(value)
    return values


def error_flag(event: str, message: str, url: str, status_code: int | None) -> str:
    """The JSON recorded as webhookErrorFlag after a delivery's last failure."""
    return json.dumps({"event": event, "message": message, "time": int(time.time() * 1000),
                       "url": url, "statusCode": status_code})
