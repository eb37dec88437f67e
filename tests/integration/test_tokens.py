"""Token store (real Redis) and the `mailpulse tokens` CLI (real subprocess)."""

import subprocess
import sys
from pathlib import Path

import pytest

from shared.keys import Keys
from shared.stores.tokens import TokenError, TokenStore, hash_token
from support.servers import ROOT


@pytest.fixture
def store(conn):
    return TokenStore(conn, Keys())


def test_only_the_hash_is_stored(store, conn):
    token = store.issue(["metrics"], "prometheus")
    assert len(token) == 64
    dump = b"".join(conn.dump(k) or b"" for k in conn.keys("*"))
    assert token.encode() not in dump
    assert conn.sismember(Keys().tokens, hash_token(token))


def test_verify_scopes_and_last_use(store):
    token = store.issue(["api"], "ci")
    found = store.verify(token)
    assert found.allows("api") and not found.allows("metrics")
    for unknown in ("0" * 64, "not-a-token", None):
        assert store.verify(unknown) is None
    store.record_use(found, "10.1.2.3")
    listed = store.list()[0]
    assert listed.last_ip == "10.1.2.3" and listed.last_used >= listed.created


def test_verify_and_record_in_one_round_trip(store, conn):
    token = store.issue(["api"], "ci")
    found = store.verify_and_record(token, "10.4.5.6")
    assert found.allows("api") and found.last_used is None  # the token as it was before this use
    listed = store.list()[0]
    assert listed.last_ip == "10.4.5.6" and listed.last_used >= listed.created
    keys_before = sorted(conn.keys("*"))
    for unknown in ("0" * 64, "not-a-token", None):
        assert store.verify_and_record(unknown, "10.4.5.6") is None
    assert sorted(conn.keys("*")) == keys_before  # an unknown token leaves nothing behind


def test_star_allows_everything(store):
    found = store.verify(store.issue())
    assert found.scopes == ("*",) and found.allows("metrics") and found.allows("api")


def test_revoke_by_id_prefix(store):
    token = store.issue(["metrics"])
    store.issue(["api"])
    with pytest.raises(TokenError):
        store.revoke("zz")
    store.revoke(store.verify(token).id)
    assert store.verify(token) is None and len(store.list()) == 1


def test_install_prepared_token_is_idempotent(store):
    token = "ab" * 32
    store.install(token, ("metrics",), "prepared")
    store.install(token, ("metrics",), "prepared")
    assert [t.description for t in store.list()] == ["prepared"]
    with pytest.raises(TokenError):
        store.install(token, ("root",), "bad")


def cli(env, *args):
    """The installed console script, as a user runs it."""
    return subprocess.run([str(Path(sys.executable).parent / "mailpulse"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_cli_issue_list_revoke(env, store):
    issued = cli(env, "tokens", "issue", "--scope", "metrics", "--scope", "api", "--description", "grafana")
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip().splitlines()[-1]
    assert store.verify(token).scopes == ("metrics", "api")
    listing = cli(env, "tokens", "list")
    assert "grafana" in listing.stdout and "metrics,api" in listing.stdout and token not in listing.stdout
    revoked = cli(env, "tokens", "revoke", token_id := store.verify(token).id)
    assert revoked.returncode == 0 and token_id in revoked.stdout
    assert store.verify(token) is None
    missing = cli(env, "tokens", "revoke", token_id)
    assert missing.returncode == 1 and "no token" in missing.stderr and "Traceback" not in missing.stderr


def test_cli_default_scope_is_all(env, store):
    token = cli(env, "tokens", "issue").stdout.strip().splitlines()[-1]
    assert store.verify(token).scopes == ("*",)


def test_cli_rejects_unknown_scope(env):
    result = cli(env, "tokens", "issue", "--scope", "root")
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_cli_help(env):
    result = cli(env, "tokens", "issue", "--help")
    assert result.returncode == 0 and "--scope" in result.stdout
