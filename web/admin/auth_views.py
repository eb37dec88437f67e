"""GET/POST /admin/login and POST /admin/logout."""

from __future__ import annotations

import secrets

from flask import g, make_response, redirect, render_template, request, url_for

from shared.stores.admin_password import MAX_LENGTH, check_password

from . import blueprint
from .guard import end_session, safe_next, sessions, set_cookie, start_session
from .sessions import LOGIN_COOKIE, tokens_match

LOGIN_PATH = "/admin/login"


def login_form(error: str | None = None, status: int = 200):
    # Double-submit CSRF token for the one form used before a session exists.
    token = secrets.token_urlsafe(32)
    response = make_response(render_template("admin/login.html", error=error, login_csrf=token,
                                             next=safe_next(request.values.get("next"))), status)
    return set_cookie(response, LOGIN_COOKIE, token, path=LOGIN_PATH)


@blueprint.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "GET":
        return login_form()
    if not tokens_match(request.form.get("csrf_token"), request.cookies.get(LOGIN_COOKIE)):
        return login_form("The form expired; please try again.", 400)
    address = request.remote_addr or "unknown"
    store = sessions()
    if store.login_blocked(address):
        return login_form("Too many failed attempts; wait a few minutes and try again.", 429)
    password = request.form.get("password", "")
    # No password longer than MAX_LENGTH can be set: don't spend scrypt on megabytes of guess.
    if len(password) > MAX_LENGTH or not check_password(password, g.admin_password_record):
        store.count_failure(address)
        return login_form("Wrong password.", 401)
    store.clear_failures(address)
    response = redirect(safe_next(request.form.get("next")))
    response.delete_cookie(LOGIN_COOKIE, path=LOGIN_PATH)
    return start_session(response, g.admin_password_record)


@blueprint.post("/logout")
def logout():
    return end_session(redirect(url_for("admin.login")))
