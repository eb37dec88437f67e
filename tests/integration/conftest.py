"""Fixtures of the integration tests beyond the root conftest: Dovecot, receiver, IMAP stack."""

from support.imap_fixtures import delivering, dovecot, imap_env, receiver  # noqa: F401
