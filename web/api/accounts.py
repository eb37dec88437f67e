"""The accounts API (EmailEngine's shapes): create, list, read, update, delete, reconnect."""

from __future__ import annotations

from flask import current_app, jsonify, request

from shared import events
from shared.errors import InputError
from shared.stores.accounts import AccountExists, AccountStore

from ..auth import error_response
from . import blueprint

MAX_PAGE_SIZE = 250


def _store() -> AccountStore:
    return current_app.config["ACCOUNTS"]


def _not_found(account_id: str):
    return error_response(404, "Not Found", f"account {account_id!r}: no such account")


def _emit(event: str, account: dict) -> None:
    events.emit_account_event(current_app.config["REDIS"], current_app.config["KEYS"], event, account)


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise InputError({name: f"must be a whole number from {low} to {high}"})
    return int(raw)


@blueprint.post("/account")
def create_account():
    try:
        account = _store().create(request.get_json(silent=True))
    except AccountExists as exc:
        return error_response(409, "Conflict", f"account: {exc.args[0]!r} already exists; "
                              "use PUT /v1/account/{account} to change it")
    _emit("accountAdded", account)
    return jsonify({"account": account["account"], "state": "new"})


@blueprint.get("/accounts")
def list_accounts():
    page = _int_arg("page", 0, 0, 1_000_000)
    page_size = _int_arg("pageSize", 20, 1, MAX_PAGE_SIZE)
    listing = _store().list(page, page_size)
    listing["accounts"] = [{name: a[name] for name in ("account", "name", "email", "state", "lastError")}
                           for a in listing["accounts"]]
    return jsonify(listing)


@blueprint.get("/account/<account>")
def get_account(account: str):
    found = _store().get(account)
    return jsonify(found) if found else _not_found(account)


@blueprint.put("/account/<account>")
def update_account(account: str):
    updated = _store().update(account, request.get_json(silent=True))
    return jsonify({"account": account}) if updated else _not_found(account)


@blueprint.delete("/account/<account>")
def delete_account(account: str):
    store = _store()
    found = store.get(account)
    if not found or not store.delete(account):
        return _not_found(account)
    _emit("accountDeleted", found)
    return jsonify({"account": account, "deleted": True})


@blueprint.put("/account/<account>/reconnect")
def reconnect_account(account: str):
    return jsonify({"reconnect": True}) if _store().request_reconnect(account) else _not_found(account)
