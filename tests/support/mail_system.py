"""A Dovecot with LMTP and a Postfix relaying every message into it: the mail system of the
sending tests, started once per test module (a module's tests share its mailboxes)."""

from __future__ import annotations

import contextlib

from .dovecot import Dovecot
from .postfix import Postfix


@contextlib.contextmanager
def mail_system(users: dict[str, str]):
    """Yields (dovecot, mta) with `users` (address -> password) created."""
    dovecot = Dovecot(lmtp=True)
    dovecot.start()
    dovecot.add_users(users)
    mta = Postfix(lmtp_port=dovecot.lmtp_port)
    try:
        mta.start()
        yield dovecot, mta
    finally:
        mta.close()
        dovecot.close()
