"""The WSGI application of the web process."""

from __future__ import annotations

import logging

from flask import Flask

from shared.config import Config
from shared.heartbeats import Heartbeats
from shared.keys import Keys
from shared.redis_conn import TRANSIENT_ERRORS, connect
from shared.secret import service_secret
from shared.stores.accounts import AccountStore
from shared.stores.tokens import TokenStore

from . import admin, api, health, metrics_view
from .auth import error_response

log = logging.getLogger(__name__)


def create_app(config: Config) -> Flask:
    app = Flask(__name__)
    conn = connect(config)
    keys = Keys(config.REDIS_PREFIX)
    secret = service_secret(config)
    app.config.update(MAILPULSE=config, REDIS=conn, KEYS=keys, TOKENS=TokenStore(conn, keys),
                      HEARTBEATS=Heartbeats(conn, keys), ACCOUNTS=AccountStore(conn, keys, secret),
                      SERVICE_SECRET=secret, JSON_SORT_KEYS=False)
    app.register_blueprint(metrics_view.blueprint)
    app.register_blueprint(health.blueprint)
    api.install(app)
    admin.install(app)

    for error in TRANSIENT_ERRORS:
        app.register_error_handler(error, redis_unavailable)
    return app


def redis_unavailable(exc):
    log.warning("Redis unavailable: %s", exc)
    return error_response(503, "Service Unavailable", "Redis is unavailable; try again shortly")
