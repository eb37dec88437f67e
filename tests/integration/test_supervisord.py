"""Production form: the `mailpulse export supervisord` output under Debian's real supervisord.

supervisord runs in `/` with a bare environment; the processes find their settings through
MAILPULSE_HOME alone. One crashed process is restarted alone, a stop reaches the worker itself
(graceful, within its grace, nothing lost), and nothing is left running after a stop or restart.
"""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
import redis
import requests

from shared.events import emit
from shared.keys import Keys
from support.receiver import Receiver
from support.scrape import parse, scrape_text, value
from support.servers import RedisServer, free_port, wait_for
from support.supervisor import MAILPULSE, Supervisor, mailpulse_pids, with_children
from support.webhooks import enable_webhooks, registry_ids

PROGRAMS = {"mailpulse-web-1", "mailpulse-imap-1", "mailpulse-webhooks-1", "mailpulse-submit-1"}
GRACE = 10


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    base = tmp_path_factory.mktemp("supervisord")
    server = RedisServer(base)
    server.start()
    home = base / "home"
    home.mkdir()
    port = free_port()
    (home / ".env").write_text(f"REDIS_URL={server.url}\nSERVICE_SECRET=supervised-{'0' * 24}\nPORT={port}\n"
                               f"HEARTBEAT_INTERVAL=1\nWEBHOOK_GRACE={GRACE}\nWEBHOOK_LEASE=5\n")
    supervisor = Supervisor(base / "sv", home)
    supervisor.url = f"http://127.0.0.1:{port}"
    supervisor.conn = redis.Redis.from_url(server.url)
    with supervisor:
        wait_for(lambda: set(supervisor.pids()) == PROGRAMS, timeout=90, what="every program RUNNING")
        wait_for(lambda: healthy(supervisor.url), timeout=90, what="/health to answer 200")
        supervisor.token = issue_token(home, base)
        yield supervisor
    server.stop()


def healthy(url: str) -> bool:
    try:
        return requests.get(url + "/health", timeout=5).status_code == 200
    except requests.ConnectionError:
        return False


def issue_token(home, elsewhere) -> str:
    """`mailpulse tokens` run from another directory finds the installation through MAILPULSE_HOME."""
    env = {"PATH": os.environ["PATH"], "MAILPULSE_HOME": str(home)}
    issued = subprocess.run([str(MAILPULSE), "tokens", "issue", "--scope", "metrics"], cwd=elsewhere, env=env,
                            capture_output=True, text=True, timeout=60)
    assert issued.returncode == 0, issued.stderr
    assert "embedded default" not in issued.stderr  # it used the .env's REDIS_URL
    return issued.stdout.strip().splitlines()[-1]


def counters(stack) -> dict[str, float]:
    samples = parse(scrape_text(stack.url, stack.token))
    return {name: value(samples, name) for name in ("thread_starts", "thread_stops")}


def test_a_killed_worker_is_restarted_alone_and_counted(stack):
    wait_for(lambda: counters(stack)["thread_starts"] >= 3, what="the three processes counted")
    before, pids = counters(stack), stack.pids()
    os.kill(pids["mailpulse-imap-1"], signal.SIGKILL)
    wait_for(lambda: stack.pids().get("mailpulse-imap-1") not in (None, pids["mailpulse-imap-1"]), timeout=60,
             what="supervisord to restart the imap process")
    after_pids = stack.pids()
    assert {n: p for n, p in after_pids.items() if n != "mailpulse-imap-1"} == \
           {n: p for n, p in pids.items() if n != "mailpulse-imap-1"}  # the others kept their pids

    def restart_counted():
        now = counters(stack)
        return (now["thread_starts"] == before["thread_starts"] + 1
                and now["thread_stops"] == before["thread_stops"] + 1 and now)

    wait_for(restart_counted, timeout=60, what="thread_starts and thread_stops to show the crash and restart")
    assert "exited: mailpulse-imap-1 (terminated by SIGKILL; not expected)" in stack.log()
    assert "imap process started" in stack.program_log("mailpulse-imap-1")  # logs where an operator looks


def test_a_stopped_webhooks_process_finishes_its_deliveries_within_its_grace(stack):
    keys = Keys()
    with Receiver(latency=2.0) as receiver:
        enable_webhooks(stack.conn, receiver.url + "/hook")
        first = [emit(stack.conn, keys, "messageNew", account="sv", data={"n": i}) for i in range(5)]
        wait_for(lambda: receiver.in_flight == 5, timeout=60, what="five deliveries in flight")
        stack.ctl("stop", "mailpulse:mailpulse-webhooks-1")  # returns once it has exited
        places = registry_ids(stack.conn)
        assert set(first) <= places["finished"] and not places["started"]  # finished, not cut off
        # By itself, within its grace: supervisord's SIGKILL after the stop wait would show here.
        assert "stopped: mailpulse-webhooks-1 (exit status 0)" in stack.log()
        later = [emit(stack.conn, keys, "messageNew", account="sv", data={"n": i}) for i in range(3)]
        assert set(later) <= registry_ids(stack.conn)["queued"]  # waiting, not lost
        stack.ctl("start", "mailpulse:mailpulse-webhooks-1")
        wait_for(lambda: set(first + later) <= registry_ids(stack.conn)["finished"], timeout=90,
                 what="the queued events to be delivered after the start")
    assert len(receiver.event_ids()) == 8


def test_restart_and_stop_all_leave_no_process_behind(stack):
    old = stack.pids()
    assert with_children(old.values()) == mailpulse_pids(stack.home)
    stack.ctl("restart", "all")
    wait_for(lambda: set(stack.pids()) == PROGRAMS, timeout=90, what="every program RUNNING again")
    new = stack.pids()
    assert not set(new.values()) & set(old.values())
    wait_for(lambda: mailpulse_pids(stack.home) == with_children(new.values()),
             what="the old processes gone, none orphaned")
    stack.ctl("stop", "all")
    assert mailpulse_pids(stack.home) == set()
    assert "with SIGKILL" not in stack.log()  # every stop was graceful: none outlasted its stop wait
