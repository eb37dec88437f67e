"""The check every admin request passes, the session cookie, CSRF tokens and response headers."""

from __future__ import annotations

from flask import abort, current_app, g, redirect, render_template, request, url_for

from shared.stores.admin_password import AdminPassword, fingerprint

from . import blueprint
from .sessions import COOKIE, COOKIE_PATH, Session, SessionStore, tokens_match

OPEN_ENDPOINTS = ("admin.login",)  # reachable without a session
# Werkzeug reads a urlencoded body whole into memory, unbounded by default; the largest admin form
# (an account) is a few KiB. waitress has the whole body and its length before we run.
MAX_BODY = 256 * 1024


def sessions() -> SessionStore:
    return SessionStore(current_app.config["REDIS"], current_app.config["KEYS"])


def password_record() -> str | None:
    return AdminPassword(current_app.config["REDIS"], current_app.config["KEYS"]).record()


def current_session(record: str) -> Session | None:
    return sessions().load(request.cookies.get(COOKIE), fingerprint(record))


def no_password_page():
    return render_template("admin/no_password.html"), 503


def login_redirect(path: str):
    return redirect(url_for("admin.login", next=path))


def safe_next(target: str | None) -> str:
    """Only a path inside /admin: the login must never send anyone to another site."""
    if target and target.startswith("/admin") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("admin.overview")


def set_cookie(response, name: str, value: str, path: str = COOKIE_PATH, max_age: int | None = None):
    response.set_cookie(name, value, path=path, max_age=max_age, httponly=True, samesite="Strict",
                        secure=request.is_secure)
    return response


def start_session(response, record: str):
    session_id, _ = sessions().create(fingerprint(record))
    # A browser-session cookie: the session itself ends in Redis after IDLE_SECONDS without use.
    return set_cookie(response, COOKIE, session_id)


def end_session(response):
    if getattr(g, "admin_session", None) is not None:
        sessions().end(g.admin_session)
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="Strict",
                           secure=request.is_secure)
    return response


def csrf_failure():
    return render_template("admin/message.html", title="Form expired",
                           message="The form was missing its security token or it did not match "
                                   "this session. Go back, reload the page and try again."), 400


@blueprint.before_request
def check():
    if request.endpoint == "admin.static":
        return None  # the stylesheet and script: the closed and login pages need them too
    if (request.content_length or 0) > MAX_BODY:
        abort(413)
    record = password_record()
    if record is None:
        return no_password_page()
    g.admin_password_record = record
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    session = current_session(record)
    if session is None:
        return login_redirect(request.full_path.rstrip("?") if request.method == "GET" else request.path)
    g.admin_session = session
    if request.method not in ("GET", "HEAD") and not tokens_match(request.form.get("csrf_token"),
                                                                   session.csrf):
        return csrf_failure()
    return None


@blueprint.after_request
def security_headers(response):
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
    return response


@blueprint.app_template_global()
def csrf_token() -> str:
    session = getattr(g, "admin_session", None)
    return session.csrf if session is not None else ""
