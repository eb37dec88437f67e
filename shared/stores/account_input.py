"""Validation of account input from the API and the admin pages (EmailEngine's shapes).

`new_account` checks a whole POST body and `account_update` a PUT body before anything is
written; every problem is reported under its dotted field name (`imap.auth.user`).
"""

from __future__ import annotations

import re
import uuid

from ..errors import InputError
from .settings import boolean, webhook_url

ACCOUNT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+=-]{0,127}$")  # safe in URLs and Redis keys
MAX_TEXT = 256


def _text(value, required: bool, limit: int = MAX_TEXT) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise ValueError("is required and must be a non-empty string" if required else "must be a string")
    if len(value) > limit:
        raise ValueError(f"is longer than {limit} characters")
    return value.strip()


def _password(value) -> str:
    """Kept exactly as given: spaces at either end can be part of a password."""
    if not isinstance(value, str) or not value:
        raise ValueError("is required and must be a non-empty string")
    if len(value) > 1024:
        raise ValueError("is longer than 1024 characters")
    return value


def valid_id(account_id: str) -> bool:
    """Whether an id from a URL can name an account (and nothing else under its key prefix)."""
    return bool(ACCOUNT_ID.fullmatch(account_id))


def _email(value) -> str:
    value = _text(value, required=False)
    if value and not re.fullmatch(r"[^@\s]+@[^@\s]+", value):
        raise ValueError("must be an email address")
    return value


def _account_id(value) -> str:
    if value is None:
        return uuid.uuid4().hex[:16]
    if not isinstance(value, str) or not valid_id(value):
        raise ValueError("must be 1-128 letters, digits or ._@+=- (starting with a letter or digit)")
    return value


class _Checker:
    """Collects problems per field so one answer names all of them."""

    def __init__(self):
        self.problems: dict[str, str] = {}

    def check(self, name: str, validator, value, *args):
        try:
            return validator(value, *args)
        except ValueError as exc:
            self.problems[name] = str(exc)
            return None

    def unknown(self, prefix: str, body: dict, known: set[str]) -> None:
        for name in body.keys() - known:
            self.problems[prefix + name] = "is not a known field"

    def done(self):
        if self.problems:
            raise InputError(self.problems)


def _port(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValueError("must be a port number from 1 to 65535")
    return value


def _server(checker: _Checker, name: str, value, previous: dict | None) -> dict | None:
    """IMAP or SMTP settings (`name` is the field); with `previous` (an update) omitted fields keep
    their old values. SMTP may go without `auth` (a relay that trusts the sender's address)."""
    if value is None or value is False:
        return None
    if not isinstance(value, dict):
        checker.problems[name] = "must be an object with host, port, secure and auth"
        return None
    base = previous or {}
    checker.unknown(f"{name}.", value, {"host", "port", "secure", "auth"})
    optional_auth = name == "smtp"
    auth = value.get("auth", base.get("auth") if optional_auth else ({} if previous else None))
    if auth is None and optional_auth:
        auth_fields = None
    else:
        if not isinstance(auth, dict):
            checker.problems[f"{name}.auth"] = "must be an object with user and pass"
            auth = {}
        checker.unknown(f"{name}.auth.", auth, {"user", "pass"})
        old_auth = base.get("auth") or {}
        auth_fields = {
            "user": checker.check(f"{name}.auth.user", _text, auth.get("user", old_auth.get("user")), True),
            "pass": checker.check(f"{name}.auth.pass", _password, auth.get("pass", old_auth.get("pass")))}
    return {
        "host": checker.check(f"{name}.host", _text, value.get("host", base.get("host")), True),
        "port": checker.check(f"{name}.port", _port, value.get("port", base.get("port"))),
        "secure": checker.check(f"{name}.secure", boolean, value.get("secure", base.get("secure", False))),
        "auth": auth_fields,
    }


def _imap(checker: _Checker, value, previous: dict | None) -> dict | None:
    return _server(checker, "imap", value, previous)


FIELDS = {"account", "name", "email", "imap", "smtp", "webhooks"}


def new_account(body) -> dict:
    """A clean account from a POST body: account, name, email, imap and smtp (or None), webhooks."""
    if not isinstance(body, dict):
        raise InputError({"body": "must be a JSON object"})
    checker = _Checker()
    checker.unknown("", body, FIELDS)
    account = {
        "account": checker.check("account", _account_id, body.get("account")),
        "name": checker.check("name", _text, body.get("name"), True),
        "email": checker.check("email", _email, body.get("email")),
        "imap": _imap(checker, body.get("imap"), None),
        "smtp": _server(checker, "smtp", body.get("smtp"), None),
        "webhooks": checker.check("webhooks", webhook_url, body.get("webhooks") or ""),
    }
    checker.done()
    return account


def account_update(body, previous_imap: dict | None, previous_smtp: dict | None = None) -> dict:
    """The fields a PUT body changes, cleaned; the account id cannot change."""
    if not isinstance(body, dict):
        raise InputError({"body": "must be a JSON object"})
    checker = _Checker()
    checker.unknown("", body, FIELDS - {"account"})
    changes = {}
    if "name" in body:
        changes["name"] = checker.check("name", _text, body["name"], True)
    if "email" in body:
        changes["email"] = checker.check("email", _email, body["email"])
    if "webhooks" in body:
        changes["webhooks"] = checker.check("webhooks", webhook_url, body["webhooks"] or "")
    if "imap" in body:
        changes["imap"] = _imap(checker, body["imap"], previous_imap)
    if "smtp" in body:
        changes["smtp"] = _server(checker, "smtp", body["smtp"], previous_smtp)
    checker.done()
    return changes
