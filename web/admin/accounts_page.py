"""/admin/accounts: list with state and last error, add, delete, reconnect.

Goes through the same AccountStore and validation as the /v1 accounts API, and emits the same
accountAdded / accountDeleted events.
"""

from __future__ import annotations

from flask import current_app, redirect, render_template, request, url_for

from shared import events
from shared.errors import InputError
from shared.stores.account_input import ACCOUNT_ID
from shared.stores.accounts import AccountExists, AccountStore

from . import blueprint

PAGE_SIZE = 50


def _store() -> AccountStore:
    return current_app.config["ACCOUNTS"]


def _emit(event: str, account: dict) -> None:
    events.emit_account_event(current_app.config["REDIS"], current_app.config["KEYS"], event, account)


def small_number(text: str, digits: int) -> int | None:
    """An ASCII decimal of at most `digits` digits, else None ("²".isdigit() is True, int() fails)."""
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= digits else None


def page_number() -> int:
    number = small_number(request.args.get("page", "0"), 6)
    return number if number is not None else 0


def render_accounts(status: int = 200, **extra):
    listing = _store().list(page_number(), PAGE_SIZE)
    return render_template("admin/accounts.html", page="accounts", listing=listing, **extra), status


def body_from_form(form) -> dict:
    """The API's POST body from the form; IMAP is off when no host is given."""
    body = {"account": form.get("account", "").strip() or None, "name": form.get("name", ""),
            "email": form.get("email", ""), "webhooks": form.get("webhooks", "")}
    if form.get("imap_host", "").strip():
        port = form.get("imap_port", "")
        # Anything but a port number goes to the validator as text: it names imap.port.
        number = small_number(port, 5)
        body["imap"] = {"host": form.get("imap_host", ""), "port": port if number is None else number,
                        "secure": bool(form.get("imap_secure")),
                        "auth": {"user": form.get("imap_user", ""), "pass": form.get("imap_pass", "")}}
    return body


def describe_error(error) -> str:
    if not error:
        return ""
    if isinstance(error, dict):
        parts = [str(error[k]) for k in ("response", "message", "serverResponseCode") if error.get(k)]
        return " · ".join(parts) or str(error)
    return str(error)


blueprint.add_app_template_filter(describe_error, "account_error")


@blueprint.get("/accounts")
def accounts():
    subject = request.args.get("account", "")
    if not ACCOUNT_ID.fullmatch(subject):  # only ever an account id: nothing else is echoed back
        return render_accounts()
    return render_accounts(done=request.args.get("done"), subject=subject)


@blueprint.post("/accounts")
def add_account():
    form = request.form
    try:
        account = _store().create(body_from_form(form))
    except InputError as exc:
        return render_accounts(400, errors=exc.fields, form=form)
    except AccountExists as exc:
        return render_accounts(409, errors={"account": f"{exc.args[0]!r} already exists"}, form=form)
    _emit("accountAdded", account)
    return redirect(url_for("admin.accounts", done="added", account=account["account"]))


@blueprint.post("/accounts/<account_id>/delete")
def delete_account(account_id: str):
    store = _store()
    found = store.get(account_id)
    if not found or not store.delete(account_id):
        return render_accounts(404, errors={"action": f"no account {account_id!r}"})
    _emit("accountDeleted", found)
    return redirect(url_for("admin.accounts", done="deleted", account=account_id))


@blueprint.post("/accounts/<account_id>/reconnect")
def reconnect_account(account_id: str):
    if not _store().request_reconnect(account_id):
        return render_accounts(404, errors={"action": f"no account {account_id!r}"})
    return redirect(url_for("admin.accounts", done="reconnect", account=account_id))
