"""rq-dashboard at /admin/rq, behind the admin login.

rq-dashboard runs as its own small Flask app (its blueprint keeps module-level state and its own
Redis connection); a WSGI wrapper in front of the main app sends /admin/rq/* there only after
the same checks as every admin page. Its forms post with JavaScript and carry no CSRF token, so
requests that change something must come from this origin (and the cookie is SameSite=Strict).
"""

from __future__ import annotations

import logging
import os
from urllib.parse import urlsplit

from flask import Flask, Response, request

from shared.redis_conn import TRANSIENT_ERRORS

from .guard import current_session, login_redirect, no_password_page, password_record

log = logging.getLogger(__name__)
MOUNT = "/admin/rq"


def make_dashboard(redis_url: str) -> Flask:
    import rq_dashboard
    from rq_dashboard.web import setup_rq_connection

    # Its templates also ask the app for a `static` endpoint (the favicon): give it the same files
    # on another path, so that the blueprint's own /static route is the one that answers there.
    static = os.path.join(os.path.dirname(rq_dashboard.__file__), "static")
    dashboard = Flask("rq_dashboard_admin", static_folder=static, static_url_path="/app-static")
    dashboard.config.from_object(rq_dashboard.default_settings)
    dashboard.config["RQ_DASHBOARD_REDIS_URL"] = redis_url
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


def refusal(app: Flask, environ) -> Response | None:
    """The response that stops this request at the door, or None to let it through."""
    with app.request_context(environ):
        try:
            record = password_record()
            if record is None:
                body, status = no_password_page()
                return Response(body, status, content_type="text/html; charset=utf-8")
            if current_session(record) is None:
                return login_redirect(request.full_path.rstrip("?"))
        except TRANSIENT_ERRORS as exc:
            log.warning("Redis unavailable: %s", exc)
            return Response("Redis is unavailable; try again shortly\n", 503, content_type="text/plain")
        if request.method not in ("GET", "HEAD", "OPTIONS") and not same_origin():
            return Response("cross-origin request refused\n", 403, content_type="text/plain")
    return None


class RqMount:
    def __init__(self, app: Flask, inner, dashboard: Flask):
        self.app = app
        self.inner = inner
        self.dashboard = dashboard

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path != MOUNT and not path.startswith(MOUNT + "/"):
            return self.inner(environ, start_response)
        refused = refusal(self.app, environ)
        if refused is not None:
            refused.headers["Cache-Control"] = "no-store"
            return refused(environ, start_response)
        environ = dict(environ, SCRIPT_NAME=environ.get("SCRIPT_NAME", "") + MOUNT,
                       PATH_INFO=path[len(MOUNT):] or "/")
        return self.dashboard(environ, start_response)


def mount_rq_dashboard(app: Flask) -> None:
    dashboard = make_dashboard(app.config["MAILPULSE"].REDIS_URL)
    app.wsgi_app = RqMount(app, app.wsgi_app, dashboard)
