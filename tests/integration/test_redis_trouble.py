"""Redis answering errors rather than going away: workers keep running and recover."""

from __future__ import annotations

import time

import requests

from shared.runtime.heartbeats import Heartbeats
from support.servers import wait_for
from support.webhooks import KEYS


def test_memory_full_redis_is_waited_out_by_every_process(conn, env, spawn, web):
    workers = [spawn("workers.imap", env), spawn("workers.webhooks", env)]
    heartbeats = Heartbeats(conn, KEYS)

    def beats() -> list[float]:
        return [w.last_beat for w in heartbeats.workers()]

    wait_for(lambda: len(beats()) == 3, what="three processes beating")
    conn.config_set("maxmemory", "1")  # every write is refused with OOM (policy noeviction)
    try:
        wait_for(lambda: all("maxmemory" in w.output() for w in workers), what="the workers to meet OOM")
        time.sleep(2)  # several heartbeat and work rounds on a Redis that refuses writes
        assert all(w.proc.poll() is None for w in workers), [w.output() for w in workers]
        assert requests.get(web.url + "/health", timeout=10).status_code == 503
    finally:
        conn.config_set("maxmemory", "0")
    since = time.time()
    wait_for(lambda: len(beats()) == 3 and min(beats()) >= since,
             what="fresh heartbeats once Redis takes writes again")
    assert all(w.proc.poll() is None for w in workers)
    # Each loop notices the cure at its next try (within its backoff).
    wait_for(lambda: requests.get(web.url + "/health", timeout=10).status_code == 200,
             what="/health healthy once every loop works again")
