"""Fixtures of the integration tests beyond the root conftest: Dovecot, receiver, IMAP stack."""

import pytest

from shared.keys import Keys
from shared.stores.accounts import AccountStore
from support.admin import set_password
from support.imap_fixtures import delivering, dovecot, imap_env, receiver  # noqa: F401


@pytest.fixture
def admin(web, conn):
    """The base URL of a web process whose admin password is set (support.admin.PASSWORD)."""
    set_password(conn)
    return web.url


@pytest.fixture
def account_store(conn, env):
    return AccountStore(conn, Keys(), env["SERVICE_SECRET"])
