"""Redis clients: for REDIS_URL, or for the master that REDIS_SENTINELS name; the bounded wait at start.

With Sentinels, a client asks them for the master's address whenever it opens a connection, and
drops connections to a master that was demoted (redis-py turns its READONLY into a connection
error), so every process follows a failover without a restart. Password, user name, db and TLS
still come from REDIS_URL (its host and port are not used then). Redis Cluster is not supported:
rq needs multi-key commands and Lua scripts over keys of many slots.
"""

from __future__ import annotations

import logging
import time

import redis
from redis.connection import parse_url
from redis.sentinel import Sentinel, SentinelConnectionPool

from .config import Config, redact_url
from .errors import ConfigError

log = logging.getLogger(__name__)

# Errors after which the same call may succeed later: Redis restarting, a network blip, a
# failover (a replica answering READONLY, MASTERDOWN), memory full under `maxmemory` (OOM, until
# keys expire or an operator acts). Loops retry these instead of ending the process.
TRANSIENT_ERRORS = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError,
                    redis.exceptions.ReadOnlyError, redis.exceptions.MasterDownError,
                    redis.exceptions.OutOfMemoryError, redis.exceptions.TryAgainError)
TIMEOUTS = dict(socket_connect_timeout=5, socket_timeout=10)
BLOCKING_POOL_WAIT = 30  # seconds a caller waits for a free connection of a bounded pool


class SentinelBlockingConnectionPool(SentinelConnectionPool, redis.BlockingConnectionPool):
    """The master's connections, bounded: callers wait for a free one instead of opening more."""


def connect(config: Config, blocking_pool: int | None = None, **overrides) -> redis.Redis:
    """A client that connects lazily and reconnects by itself after a failure.

    blocking_pool=N: at most N connections, and callers wait for a free one (for a process whose
    many greenlets share one client). Other keyword arguments go to the connections.
    """
    options = dict(TIMEOUTS, health_check_interval=30)
    options.update(overrides)
    if blocking_pool is not None:
        options.update(max_connections=blocking_pool, timeout=BLOCKING_POOL_WAIT)
    try:
        if config.REDIS_SENTINELS:
            return _sentinel_client(config, blocking_pool is not None, options)
        if blocking_pool is not None:
            pool = redis.BlockingConnectionPool.from_url(config.REDIS_URL, **options)
            return redis.Redis(connection_pool=pool)
        return redis.Redis.from_url(config.REDIS_URL, **options)
    except ValueError as exc:
        raise ConfigError(f"REDIS_URL: {exc}") from None


def _sentinel_client(config: Config, blocking: bool, options: dict) -> redis.Redis:
    url = parse_url(config.REDIS_URL)
    auth = {name: url[name] for name in ("username", "password", "db") if url.get(name) is not None}
    if config.REDIS_URL.startswith("rediss:"):
        auth["ssl"] = True
    sentinels = Sentinel(list(config.REDIS_SENTINELS), sentinel_kwargs=dict(TIMEOUTS))
    pool_class = SentinelBlockingConnectionPool if blocking else SentinelConnectionPool
    return sentinels.master_for(config.REDIS_SENTINEL_MASTER, connection_pool_class=pool_class,
                                **auth, **options)


def describe(config: Config) -> str:
    """Where the Redis is, for logs and error messages (no password)."""
    if config.REDIS_SENTINELS:
        listed = ",".join(f"{host}:{port}" for host, port in config.REDIS_SENTINELS)
        return f"master {config.REDIS_SENTINEL_MASTER!r} of the Sentinels {listed}"
    return redact_url(config.REDIS_URL)


def _setting(config: Config) -> str:
    """The setting to name in an error about reaching Redis."""
    return "REDIS_SENTINELS" if config.REDIS_SENTINELS else "REDIS_URL"


def wait_until_ready(conn: redis.Redis, config: Config) -> None:
    """Wait up to REDIS_WAIT_SECONDS for Redis to answer PING (honcho starts everything at once)."""
    deadline = time.monotonic() + config.REDIS_WAIT_SECONDS
    logged = False
    while True:
        try:
            conn.ping()
            return
        except redis.AuthenticationError:
            raise ConfigError(f"REDIS_URL: {describe(config)} refused the credentials") from None
        except TRANSIENT_ERRORS as exc:
            if time.monotonic() >= deadline:
                raise ConfigError(
                    f"{_setting(config)}: no answer from {describe(config)} after "
                    f"{config.REDIS_WAIT_SECONDS:g} s ({exc})") from None
            if not logged:
                log.info("waiting for Redis at %s (up to %g s)", describe(config),
                         config.REDIS_WAIT_SECONDS)
                logged = True
            time.sleep(0.25)
        except redis.ResponseError as exc:
            raise ConfigError(f"{_setting(config)}: {describe(config)} answered {exc}") from None
