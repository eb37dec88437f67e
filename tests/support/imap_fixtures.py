"""pytest fixtures for IMAP worker tests; a test module imports the ones it uses."""

from __future__ import annotations

import pytest

from .dovecot import Dovecot
from .imap import FAST
from .receiver import Receiver
from .webhooks import enable_webhooks


@pytest.fixture
def dovecot():
    server = Dovecot()
    server.start()
    yield server
    server.close()


@pytest.fixture
def receiver():
    with Receiver() as server:
        yield server


# gevent's blocking monitor in every IMAP process of the tests: a greenlet that keeps the process
# from switching for more than 100 ms is printed as a report, and the test fails on it. The
# monitor measures wall-clock time: the processes run at real-time priority, so that the load of
# a shared machine does not pass for a blocking greenlet (support.servers.Process).
BLOCKING_MONITOR = dict(GEVENT_MONITOR_THREAD_ENABLE="true", GEVENT_MAX_BLOCKING_TIME="0.1",
                        MAILPULSE_TEST_REALTIME="1")
BLOCKED = "appears to be blocked"


@pytest.fixture
def imap_env(env, tmp_path):
    env.update(FAST, **BLOCKING_MONITOR)
    yield env
    reports = [path.name for path in tmp_path.glob("workers.imap-*.log")
               if BLOCKED in path.read_text(errors="replace")]
    assert reports == [], f"gevent's blocking monitor reported a blocked IMAP process in {reports}"


@pytest.fixture
def delivering(conn, imap_env, spawn, receiver):
    """Webhooks enabled to `receiver`, and a real webhooks process delivering them."""
    enable_webhooks(conn, receiver.url + "/hook")
    return spawn("workers.webhooks", imap_env)
