"""Redis connection factory and the bounded wait for a Redis that is still starting."""

from __future__ import annotations

import logging
import time

import redis

from .config import Config, redact_url
from .errors import ConfigError

log = logging.getLogger(__name__)

# Errors after which the same call may succeed later: Redis restarting, a network blip, a
# failover (a replica answering READONLY, MASTERDOWN), memory full under `maxmemory` (OOM, until
# keys expire or an operator acts). Loops retry these instead of ending the process.
TRANSIENT_ERRORS = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError,
                    redis.exceptions.ReadOnlyError, redis.exceptions.MasterDownError,
                    redis.exceptions.OutOfMemoryError, redis.exceptions.TryAgainError)


def connect(config: Config, **overrides) -> redis.Redis:
    """A client for REDIS_URL. It connects lazily and reconnects by itself after a failure."""
    options = dict(socket_connect_timeout=5, socket_timeout=10, health_check_interval=30)
    options.update(overrides)
    try:
        return redis.Redis.from_url(config.REDIS_URL, **options)
    except ValueError as exc:
        raise ConfigError(f"REDIS_URL: {exc}") from None


def wait_until_ready(conn: redis.Redis, config: Config) -> None:
    """Wait up to REDIS_WAIT_SECONDS for Redis to answer PING (honcho starts everything at once)."""
    deadline = time.monotonic() + config.REDIS_WAIT_SECONDS
    logged = False
    while True:
        try:
            conn.ping()
            return
        except redis.AuthenticationError:
            raise ConfigError(f"REDIS_URL: {redact_url(config.REDIS_URL)} refused the credentials") from None
        except TRANSIENT_ERRORS as exc:
            if time.monotonic() >= deadline:
                raise ConfigError(
                    f"REDIS_URL: no answer from {redact_url(config.REDIS_URL)} after "
                    f"{config.REDIS_WAIT_SECONDS:g} s ({exc})") from None
            if not logged:
                log.info("waiting for Redis at %s (up to %g s)", redact_url(config.REDIS_URL),
                         config.REDIS_WAIT_SECONDS)
                logged = True
            time.sleep(0.25)
        except redis.ResponseError as exc:
            raise ConfigError(f"REDIS_URL: {redact_url(config.REDIS_URL)} answered {exc}") from None
