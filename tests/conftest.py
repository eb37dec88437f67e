"""Fixtures: a real redis-server per session (flushed per test), mailpulse processes per test."""

from __future__ import annotations

import os
import tempfile

# In-process imports of shared.metrics need multiprocess mode, before prometheus_client loads.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="mailpulse-test-metrics-"))

import pytest  # noqa: E402
import redis  # noqa: E402
import requests  # noqa: E402

from support.servers import Process, RedisServer, base_env, start_web  # noqa: E402


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server):
    if redis_server.proc.poll() is not None:  # a test stopped it
        redis_server.start()
    redis.Redis.from_url(redis_server.url).flushall()
    return redis_server.url


@pytest.fixture
def conn(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def env(redis_url, tmp_path):
    return base_env(redis_url, tmp_path)


@pytest.fixture
def spawn(tmp_path):
    """spawn(module, env) starts a real process; every one still running is stopped at the end."""
    started = []

    def start(module: str, env: dict, *args) -> Process:
        proc = Process(module, env, tmp_path / f"{module}-{len(started)}.log", args)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop(timeout=10)


@pytest.fixture
def web(spawn, env):
    """A running web process; `.url` is its base URL."""
    return start_web(spawn, env)


@pytest.fixture
def api(web, conn):
    """api(method, path, **kwargs): a request to the web process with an `api`-scope token."""
    from shared.keys import Keys
    from shared.stores.tokens import TokenStore

    token = TokenStore(conn, Keys("")).issue(("api",))
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"

    def call(method: str, path: str, **kwargs):
        return session.request(method, web.url + path, timeout=10, **kwargs)

    yield call
    session.close()
