"""STARTTLS: an account with `secure: false` on a server that offers STARTTLS is upgraded before
LOGIN, and the server's certificate is verified (a real Dovecot with a self-signed certificate)."""

from __future__ import annotations

import subprocess

import pytest

from support.dovecot import Dovecot
from support.imap import add_account, store, wait_state


@pytest.fixture
def tls_dovecot(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    server = Dovecot(extra_config=f"ssl = yes\nssl_cert = <{cert}\nssl_key = <{key}")
    server.cert = cert
    server.start()
    yield server
    server.close()


def logins(server: Dovecot, user: str) -> list[str]:
    return [line for line in server.log().splitlines() if f"Login: user=<{user}>" in line]


def test_plain_account_is_upgraded_with_starttls_before_login(conn, tls_dovecot, imap_env, spawn):
    tls_dovecot.add_user("pia", "pässwort")  # AUTHENTICATE PLAIN after the upgrade
    add_account(conn, tls_dovecot, "pia")
    assert store(conn).get("pia")["imap"]["secure"] is False
    spawn("workers.imap", dict(imap_env, SSL_CERT_FILE=str(tls_dovecot.cert)))  # trusts the test cert
    wait_state(conn, "pia", "connected")
    assert logins(tls_dovecot, "pia") and all(", TLS," in line for line in logins(tls_dovecot, "pia"))


def test_starttls_with_an_untrusted_certificate_is_a_connect_error(conn, tls_dovecot, imap_env, spawn):
    add_account(conn, tls_dovecot, "quin")
    spawn("workers.imap", imap_env)  # the self-signed certificate is not trusted here
    wait_state(conn, "quin", "connectError")
    assert "CERTIFICATE_VERIFY_FAILED" in store(conn).get("quin")["lastError"]["response"]
    assert logins(tls_dovecot, "quin") == []  # the password was never sent
