"""rq-dashboard at /admin/rq, behind the admin login.

rq-dashboard runs as its own small Flask app (its blueprint keeps module-level state and its own
Redis connection); a WSGI wrapper in front of the main app sends /admin/rq/* there only after
the same checks as every admin page. Its forms post with JavaScript and carry no CSRF token, so
requests that change something must come from this origin (and the cookie is SameSite=Strict).
Only its read-only paths answer GET: rq-dashboard 0.9 also re-queues on `GET /requeue/<queue>`.
Its responses get the admin pages' security headers, with a CSP loosened just enough for its
inline script and its underscore templates (compiled with `new Function`).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from urllib.parse import urlsplit

import redis
from flask import Flask, Response, request

from shared.redis_conn import connect
from shared.redis_errors import kind_of

from .guard import current_session, login_redirect, no_password_page, password_record
from .rq_escaping import EscapingDashboard

log = logging.getLogger(__name__)
_lock = threading.Lock()
MOUNT = "/admin/rq"
# rq-dashboard 0.9's read-only paths (below MOUNT): its pages and JSON under /<instance>/, its
# files; every other path changes something (delete, requeue, empty, compact) whatever the method.
READ_ONLY = re.compile(r"/(?:|favicon\.ico|(?:static|app-static)/.*|\d+(?:/.*)?)", re.DOTALL)
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
INSTANCE = re.compile(r"/(\d+)(?:/|$)")  # one Redis is configured: instance 0 is the only one
SECURITY_HEADERS = (
    ("Cache-Control", "no-store"),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("Content-Security-Policy",
     "default-src 'none'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; "
     "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; connect-src 'self'; "
     "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
)


def make_dashboard(config) -> Flask:
    import rq_dashboard
    import rq_dashboard.web
    from rq_dashboard.web import setup_rq_connection

    # rq-dashboard makes its clients from URLs (a new one per request, and no Sentinel with
    # REDIS_SENTINELS, no ACL user name): it gets mailpulse's own client instead, through the one
    # name it looks up (redis_sentinel_url's connect, which returns (sentinel, client)).
    conn = connect(config)
    rq_dashboard.web.from_url = lambda *_args, **_kwargs: (None, conn)

    # Its templates also ask the app for a `static` endpoint (the favicon): give it the same files
    # on another path, so that the blueprint's own /static route is the one that answers there.
    static = os.path.join(os.path.dirname(rq_dashboard.__file__), "static")
    # EscapingDashboard: its job views show job data (receivers' error text) as text.
    dashboard = EscapingDashboard("rq_dashboard_admin", static_folder=static, static_url_path="/app-static")
    dashboard.config.from_object(rq_dashboard.default_settings)
    dashboard.config["RQ_DASHBOARD_REDIS_URL"] = "redis://mailpulse/0"  # one instance; see from_url
    dashboard.register_blueprint(rq_dashboard.blueprint, url_prefix="")
    setup_rq_connection(dashboard)
    return dashboard


def same_origin() -> bool:
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin") or request.headers.get("Referer")
    if not origin:
        return False
    parts = urlsplit(origin)
    return f"{parts.scheme}://{parts.netloc}" == request.host_url.rstrip("/")


def plain(text: str, status: int, **headers) -> Response:
    return Response(text + "\n", status, content_type="text/plain; charset=utf-8", headers=headers)


def refusal(app: Flask, environ, subpath: str) -> Response | None:
    """The response that stops this request at the door, or None to let it through."""
    with app.request_context(environ):
        try:
            record = password_record()
            if record is None:
                body, status = no_password_page()
                return Response(body, status, content_type="text/html; charset=utf-8")
            if current_session(record) is None:
                return login_redirect(request.full_path.rstrip("?"))
        except redis.RedisError as exc:
            with _lock:
                app.config["REQUEST_TROUBLE"].failed(exc)
            return plain(f"Redis is unavailable ({kind_of(exc)}); try again shortly", 503)
        if request.method in SAFE_METHODS and READ_ONLY.fullmatch(subpath) is None:
            return plain("not a page of rq-dashboard; its actions need POST", 405, Allow="POST")
        if request.method not in SAFE_METHODS and not same_origin():
            return plain("cross-origin request refused", 403)
        instance = INSTANCE.match(subpath)
        if instance and instance.group(1) != "0":
            return plain("no such Redis instance", 404)
    return None


def with_security_headers(start_response):
    def start(status, headers, exc_info=None):
        names = {name.lower() for name, _ in SECURITY_HEADERS}
        kept = [(name, value) for name, value in headers if name.lower() not in names]
        return start_response(status, kept + list(SECURITY_HEADERS), exc_info)

    return start


class RqMount:
    def __init__(self, app: Flask, inner, dashboard: Flask):
        self.app = app
        self.inner = inner
        self.dashboard = dashboard

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path != MOUNT and not path.startswith(MOUNT + "/"):
            return self.inner(environ, start_response)
        start_response = with_security_headers(start_response)
        subpath = path[len(MOUNT):] or "/"
        refused = refusal(self.app, environ, subpath)
        if refused is not None:
            return refused(environ, start_response)
        environ = dict(environ, SCRIPT_NAME=environ.get("SCRIPT_NAME", "") + MOUNT, PATH_INFO=subpath)
        return self.dashboard(environ, start_response)


def mount_rq_dashboard(app: Flask) -> None:
    dashboard = make_dashboard(app.config["MAILPULSE"])
    app.wsgi_app = RqMount(app, app.wsgi_app, dashboard)
