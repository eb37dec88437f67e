"""The fairness mode of bench/webhooks.py: another target's latency beside a slow receiver's backlog.

    .venv/bin/python bench/webhooks.py --fairness

Per scenario, on an emptied Redis: BACKLOG events for a slow receiver are queued, one webhooks
process starts, and once it is delivering, PROBES events of another account (its own receiver,
answering at once) are emitted one every PROBE_GAP seconds. Their latency is emit -> arrival at
that receiver. Scenarios, all in one run:
  no neighbour                  the probes alone (the baseline)
  slow neighbour, no cap        the cap as large as WEBHOOK_CONCURRENCY: the old single FIFO
  slow neighbour                the default per-target cap
  hanging neighbour             the receiver never answers; each attempt ends at WEBHOOK_TIMEOUT
Goal (issue 12): with the cap, p50 < 1 s and max < 3 s, for a slow and a hanging neighbour alike.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

from rq import Queue

from shared.events import emit
from shared.stores.settings import SettingsStore
from support.receiver import Receiver
from support.servers import wait_for

PROBES = 20
PROBE_GAP = 0.25  # seconds between probe events


def _probe_latencies(conn, keys, env, root, backlog: int, slow_url: str | None) -> list[float]:
    conn.flushall()
    SettingsStore(conn, keys).update({"webhooksEnabled": True, "webhookEvents": ["*"]})
    with Receiver() as probe_receiver:
        conn.hset(keys.account("probe"), "webhooks", probe_receiver.url + "/probe")
        if slow_url:
            conn.hset(keys.account("tenant"), "webhooks", slow_url)
            for i in range(backlog):
                emit(conn, keys, "messageNew", account="tenant", data={"i": i})
        worker = subprocess.Popen([sys.executable, "-m", "workers.webhooks"], cwd=root, env=env)
        try:
            wait_for(lambda: conn.scard("rq:workers"), what="the webhooks process to start")
            if slow_url:  # the backlog is being delivered before the first probe
                started = Queue(keys.queue("notify"), connection=conn).started_job_registry.key
                wait_for(lambda: conn.zcard(started) > 0, what="deliveries to start")
            sent = []
            for i in range(PROBES):
                sent.append(time.time())
                emit(conn, keys, "messageNew", account="probe", data={"probe": i})
                time.sleep(PROBE_GAP)
            wait_for(lambda: len(probe_receiver.event_ids()) >= PROBES, timeout=120, interval=0.05,
                     what="the probe events")
            arrived = {}
            for request in probe_receiver.requests:  # the first arrival of each (at least once)
                i = request.json["data"]["probe"]
                arrived[i] = min(arrived.get(i, request.at), request.at)
            return [arrived[i] - sent[i] for i in range(PROBES)]
        finally:
            worker.terminate()
            worker.wait(30)


def run(conn, keys, base_env: dict, root, backlog: int, slow_ms: float) -> None:
    concurrency = int(base_env.get("WEBHOOK_CONCURRENCY", "200"))
    env = dict(base_env, WEBHOOK_GRACE="0", WEBHOOK_TIMEOUT="30")
    with Receiver(latency=slow_ms / 1000) as slow, Receiver(latency=3600) as hanging:
        scenarios = [
            ("no neighbour", env, None),
            # A cap above what a process holds at all: one FIFO for all targets, as before.
            ("slow neighbour, no cap", dict(env, WEBHOOK_TARGET_CONCURRENCY="1000"), slow.url),
            ("slow neighbour", env, slow.url),
            ("hanging neighbour", env, hanging.url),
        ]
        print(f"backlog {backlog} events for a {slow_ms:g} ms receiver; {PROBES} probe events of another "
              f"account, one per {PROBE_GAP} s; WEBHOOK_CONCURRENCY {concurrency}, "
              f"WEBHOOK_TARGET_CONCURRENCY {env.get('WEBHOOK_TARGET_CONCURRENCY', 'default (50)')}, "
              f"cpus {os.cpu_count()}")
        baseline = None
        for name, scenario_env, url in scenarios:
            latencies = _probe_latencies(conn, keys, scenario_env, root, backlog, url)
            p50, worst = statistics.median(latencies), max(latencies)
            baseline = baseline or p50
            print(f"  {name:<24} probe latency p50 {p50 * 1000:7.0f} ms  max {worst * 1000:7.0f} ms"
                  f"  (p50 {p50 / baseline:.1f}x no neighbour)")
