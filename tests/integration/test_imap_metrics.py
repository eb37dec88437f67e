"""The IMAP metrics in the web process's /metrics: states, unheld accounts, responses, bytes."""

from __future__ import annotations

from shared.keys import Keys
from shared.stores.tokens import TokenStore
from support.imap import add_account, expire_lease, hold_elsewhere, store, wait_state
from support.scrape import parse, scrape_text, value
from support.servers import free_port, start_web, wait_for

STATES = ("init", "connecting", "connected", "syncing", "authenticationError", "connectError",
          "disconnected", "unset")


def test_connections_per_state_and_unheld_accounts(conn, dovecot, imap_env, spawn, web):
    token = TokenStore(conn, Keys()).issue(["metrics"])

    def scrape():
        return parse(scrape_text(web.url, token))

    def connections():
        samples = scrape()
        return {s: value(samples, "imap_connections", status=s) for s in STATES}

    add_account(conn, dovecot, "ivy")
    add_account(conn, dovecot, "jack")
    dovecot.add_user("kim", "right")
    add_account(conn, dovecot, "kim", password="wrong")
    assert connections() == {**dict.fromkeys(STATES, 0), "disconnected": 3}  # no IMAP process yet
    assert store(conn).get("ivy")["state"] == "init"  # the API shows it as not picked up yet

    worker = spawn("workers.imap", imap_env)
    wait_state(conn, "ivy", "connected")
    wait_state(conn, "jack", "connected")
    wait_state(conn, "kim", "authenticationError")
    wait_for(lambda: connections() == {**dict.fromkeys(STATES, 0), "connected": 2, "authenticationError": 1},
             timeout=10, what="2 connected and 1 authenticationError")

    samples = scrape()
    assert value(samples, "imap_responses", response="OK", code="") >= 4  # CAPABILITY, LOGIN x2, ...
    assert value(samples, "imap_responses", response="OK", code="READ-ONLY") >= 2  # EXAMINE INBOX
    assert value(samples, "imap_responses", response="NO", code="AUTHENTICATIONFAILED") >= 1
    assert value(samples, "imap_bytes_sent") > 0 and value(samples, "imap_bytes_received") > 0

    worker.kill()  # its accounts are held by no live process now
    wait_for(lambda: connections() == {**dict.fromkeys(STATES, 0), "disconnected": 3}, timeout=15,
             what="the dead process's accounts counted as disconnected")
    # Its last state stays recorded, but the API shows the account as held by nobody once the
    # dead process's lease has expired.
    wait_for(lambda: store(conn).get("ivy")["state"] == "disconnected", timeout=15,
             what="the API to show the unheld account as disconnected")
    assert store(conn).count_by_state()["disconnected"] == 3


def test_accounts_held_on_another_host_are_not_counted_disconnected_here(conn, dovecot, web):
    """Each host's gauge shows only its own processes' accounts; the unheld part comes from the
    leases in Redis, so an account held on another host is not `disconnected` on this one."""
    token = TokenStore(conn, Keys()).issue(["metrics"])
    add_account(conn, dovecot, "lou")
    add_account(conn, dovecot, "mia")
    hold_elsewhere(conn, "mia", "imap:4242:otherhost")  # an IMAP process elsewhere
    samples = parse(scrape_text(web.url, token))
    assert value(samples, "imap_connections", status="disconnected") == 1  # lou only
    expire_lease(conn, "imap:4242:otherhost")  # that process is gone and its lease expired
    samples = parse(scrape_text(web.url, token))
    assert value(samples, "imap_connections", status="disconnected") == 2


def test_unheld_accounts_are_reported_by_one_host_only(conn, dovecot, spawn, env, tmp_path):
    """Two hosts' web processes (each its own metrics directory): the accounts no IMAP process
    holds are counted by exactly one of them, so a sum over hosts counts every account once."""
    token = TokenStore(conn, Keys()).issue(["metrics"])
    for name in ("uma", "vic", "wes"):
        add_account(conn, dovecot, name)
    hosts = [start_web(spawn, dict(env, PORT=str(free_port()), PROMETHEUS_MULTIPROC_DIR=str(tmp_path / n)))
             for n in "ab"]

    def disconnected():
        return [value(parse(scrape_text(host.url, token)), "imap_connections", status="disconnected")
                for host in hosts]

    for _ in range(3):  # the same host reports at every scrape
        assert sorted(disconnected()) == [0, 3]
    reporter = disconnected().index(3)
    hosts[reporter].stop()  # that host is gone: its claim runs out after REPORTER_SECONDS,
    conn.delete(Keys().unheld_reporter)  # (here: at once)
    # and the next scrape of another host takes it over.
    survivor = hosts[1 - reporter]
    assert value(parse(scrape_text(survivor.url, token)), "imap_connections", status="disconnected") == 3
