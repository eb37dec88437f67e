"""Redis Sentinel: every process finds the master through the Sentinels and follows a failover.

A master, a replica and three Sentinels (Debian's redis-server and redis-sentinel). The master is
SIGKILLed while events flow: the replica is promoted, the API takes work again, every event
accepted after the kill is delivered, no process exits, and /metrics, the CLI and rq-dashboard
work against the new master.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
import redis
import requests

from shared.keys import Keys
from shared.stores.tokens import TokenStore, hash_token
from support.admin import logged_in, set_password
from support.receiver import Receiver
from support.scrape import parse, scrape_text, value
from support.sentinel import MASTER_NAME, SentinelSet
from support.servers import ROOT, base_env, start_web, wait_for
from support.webhooks import enable_webhooks

PROMOTION_DEADLINE = 30  # seconds from the kill until the API must take work again (the issue's)


@pytest.fixture(scope="module")
def sentinels(tmp_path_factory):
    servers = SentinelSet(tmp_path_factory.mktemp("sentinel"))
    try:
        servers.start()
        yield servers
    finally:
        servers.stop()


def master(sentinels: SentinelSet) -> redis.Redis:
    return redis.Redis(port=sentinels.master_port())


class EventPump:
    """POSTs test webhooks in a loop; remembers which were accepted, and when."""

    def __init__(self, url: str, token: str):
        self.url, self.token = url, token
        self.accepted: list[tuple[float, str]] = []  # (time, job id)
        self.refused = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.token}"
        while not self.stop.is_set():
            try:
                response = session.post(self.url + "/v1/webhooks/test", timeout=10)
            except requests.RequestException:
                self.refused += 1
            else:
                if response.status_code == 200:
                    self.accepted.append((time.time(), response.json()["jobId"]))
                else:
                    assert response.status_code == 503, response.text
                    self.refused += 1
            self.stop.wait(0.05)

    def accepted_since(self, moment: float) -> list[str]:
        return [job for at, job in self.accepted if at > moment]


def test_failover_is_followed_by_every_process(sentinels, spawn, tmp_path):
    conn = master(sentinels)
    conn.flushall()
    env = base_env("redis://sentinel-master/0", tmp_path, REDIS_SENTINELS=sentinels.sentinels,
                   REDIS_SENTINEL_MASTER=MASTER_NAME)
    keys = Keys()
    api_token = TokenStore(conn, keys).issue(["api"])
    metrics_token = TokenStore(conn, keys).issue(["metrics"])
    set_password(conn)
    with Receiver() as receiver:
        enable_webhooks(conn, receiver.url, events=["test"])
        conn.wait(1, 5000)  # the replica has it all before anything is killed
        web = start_web(spawn, env)
        workers = [spawn("workers.imap", env), spawn("workers.webhooks", env)]
        wait_for(lambda: requests.get(web.url + "/health", timeout=5).status_code == 200,
                 what="the stack to be healthy through the Sentinels")
        pump = EventPump(web.url, api_token)
        pump.thread.start()
        wait_for(lambda: len(receiver.requests) >= 5, what="events to flow before the kill")

        old_port = sentinels.kill_master()
        killed_at = time.time()
        wait_for(lambda: sentinels.master_port() != old_port, timeout=PROMOTION_DEADLINE,
                 what="a Sentinel to promote the replica")
        left = PROMOTION_DEADLINE - (time.time() - killed_at)
        wait_for(lambda: pump.accepted_since(killed_at), timeout=left, what="the API to take work again")
        wait_for(lambda: len(pump.accepted_since(killed_at)) >= 20, what="events after the failover")
        pump.stop.set()
        pump.thread.join(15)

        after = set(pump.accepted_since(killed_at))
        wait_for(lambda: after <= {r.headers.get("X-EE-Wh-Id") for r in receiver.requests}, timeout=60,
                 what="every event accepted after the kill to be delivered")
    assert all(w.proc.poll() is None for w in [web, *workers]), [w.output() for w in workers]

    samples = parse(scrape_text(web.url, metrics_token))
    assert value(samples, "queue_size", queue="notify", state="waiting") is not None
    for process in ("web", "imap", "webhooks"):  # each met the dead master, and counted it
        assert (value(samples, "mailpulse_redis_errors_total", process=process, kind="connection") or 0) > 0
    wait_for(lambda: requests.get(web.url + "/health", timeout=5).status_code == 200,
             what="/health to be 200 again on the new master")
    cli = subprocess.run([sys.executable, "-m", "shared.cli", "tokens", "list"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0 and hash_token(metrics_token)[:12] in cli.stdout, cli.stderr
    session = logged_in(web.url)
    queues = session.get(web.url + "/admin/rq/0/data/queues.json", timeout=10)
    assert queues.status_code == 200 and "notify" in queues.text
