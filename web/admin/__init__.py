"""Admin pages under /admin: server-rendered HTML behind a password login (DESIGN section 1).

Every request to /admin passes `guard.check` first: no password set -> a page saying how to set
one; no session -> the login page; a POST without the session's CSRF token -> 400.
rq-dashboard is mounted at /admin/rq behind the same check (rq_mount.py).
"""

from __future__ import annotations

from flask import Blueprint, Flask

blueprint = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates",
                      static_folder="static")


def install(app: Flask) -> None:
    from . import accounts_page, auth_views, errors, filters, guard, overview, tokens_page, webhooks_page  # noqa: F401
    from .rq_mount import mount_rq_dashboard

    app.register_blueprint(blueprint)
    errors.install(app)
    mount_rq_dashboard(app)
