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


@pytest.fixture
def imap_env(env):
    env.update(FAST)
    return env


@pytest.fixture
def delivering(conn, imap_env, spawn, receiver):
    """Webhooks enabled to `receiver`, and a real webhooks process delivering them."""
    enable_webhooks(conn, receiver.url + "/hook")
    return spawn("workers.webhooks", imap_env)
