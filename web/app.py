"""The WSGI application of the web process."""

from __future__ import annotations

import logging
import threading

import redis
from flask import Flask, current_app
from redis.backoff import NoBackoff
from redis.retry import Retry

from shared.config import Config
from shared.keys import Keys
from shared.mail.mailbox_channel import READER_GONE
from shared.mail.mailbox_client import MailboxChannel
from shared.mail.submit_queue import SubmitQueue
from shared.redis_conn import connect
from shared.redis_errors import kind_of
from shared.redis_trouble import RedisTrouble
from shared.runtime.heartbeats import Heartbeats
from shared.secret import service_secret
from shared.stores.accounts import AccountStore
from shared.stores.tokens import TokenStore

from . import admin, api, health, metrics_view
from .auth import VerifiedTokens, error_response

log = logging.getLogger(__name__)


# Requests wait on Redis for little: a Redis that does not answer costs one scrape a few seconds
# (and the rest of that scrape skips it, web/collectors/guarded.py), never Prometheus's timeout.
REDIS_OPTIONS = dict(socket_connect_timeout=2, socket_timeout=5, retry=Retry(NoBackoff(), 1))


def create_app(config: Config) -> Flask:
    app = Flask(__name__)
    conn = connect(config, **REDIS_OPTIONS)
    keys = Keys(config.REDIS_PREFIX)
    secret = service_secret(config)
    app.config.update(MAILPULSE=config, REDIS=conn, KEYS=keys, TOKENS=TokenStore(conn, keys),
                      HEARTBEATS=Heartbeats(conn, keys), ACCOUNTS=AccountStore(conn, keys, secret),
                      SERVICE_SECRET=secret, JSON_SORT_KEYS=False,
                      REQUEST_TROUBLE=RedisTrouble("requests", "web", log, loop=False),
                      VERIFIED_TOKENS=VerifiedTokens(), SUBMIT_QUEUE=SubmitQueue(conn, keys))
    # The mailbox API waits on Redis for its IMAP process's reply: a client of its own whose
    # socket timeout outlasts the longest wait.
    channel_conn = connect(config, socket_connect_timeout=2,
                           socket_timeout=max(config.API_TIMEOUT, READER_GONE) + 10)
    app.config["MAILBOX_CHANNEL"] = MailboxChannel(channel_conn, keys, config.API_TIMEOUT)
    app.config["COLLECTORS"] = metrics_view.make_collectors(app.config)
    app.register_blueprint(metrics_view.blueprint)
    app.register_blueprint(health.blueprint)
    api.install(app)
    admin.install(app)

    app.register_error_handler(redis.RedisError, redis_unavailable)
    return app


def redis_unavailable(exc: redis.RedisError):
    """Any Redis error a request meets: 503 naming its kind (never the Redis address)."""
    with _trouble_lock:
        current_app.config["REQUEST_TROUBLE"].failed(exc)
    return error_response(503, "Service Unavailable",
                          f"Redis is unavailable ({kind_of(exc)}); try again shortly")


_trouble_lock = threading.Lock()
