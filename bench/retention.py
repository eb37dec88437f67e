"""Benchmark: what N webhook events leave in Redis once their keep times have passed.

    .venv/bin/python bench/retention.py --events 5000 --failing 1000

Starts its own redis-server, a loopback receiver (a separate process) that answers 500 to the
events marked to fail and 200 to the rest, and one webhooks process with short keep times
(WEBHOOK_KEEP_FINISHED, and WEBHOOK_KEEP_FAILED_MAX below the number of failures; attempts and
backoff small so that failures are final within seconds). It queues N messageNew events of a
realistic size through shared.events.emit, then prints Redis's key count and used_memory at
the start (the webhooks process running, nothing queued), once the queue has drained (every job
finished or failed; those of the last WEBHOOK_KEEP_FINISHED seconds still kept), and once the
keep times have passed, per 1,000 events; and the footprint of one kept job (MEMORY USAGE).
Goal: no keys beyond the kept failures, memory back within a few MB. Prints; checks nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
_metrics_dir = tempfile.mkdtemp(prefix="mailpulse-bench-metrics-")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir  # before anything imports prometheus_client

import redis  # noqa: E402
from rq import Queue  # noqa: E402

from shared.events import emit  # noqa: E402
from shared.keys import Keys  # noqa: E402
from shared.stores.settings import SettingsStore  # noqa: E402
from support.servers import RedisServer, free_port, wait_for  # noqa: E402

SECRET = "bench-secret-" + "0" * 20
KEYS = Keys("")
RECEIVER = """
import json, sys
sys.path.insert(0, 'tests')
from support.receiver import Receiver
Receiver(respond=lambda r: 500 if json.loads(r.body)['data'].get('fail') else 200,
         port={port}).server.serve_forever()
"""


def start_receiver() -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", RECEIVER.format(port=port)], cwd=ROOT)

    def listening():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    wait_for(listening, what="the receiver")
    return proc, f"http://127.0.0.1:{port}/hook"


def message(i: int, fail: bool) -> dict:
    """messageNew data as an IMAP worker sends it (about 600 bytes of JSON)."""
    return {"id": f"AAAAAQAAAe{i:08d}", "uid": 1000 + i, "path": "INBOX", "date": "2026-11-27T10:00:00.000Z",
            "flags": [], "size": 4213, "subject": f"Quarterly report, part {i} - please review before Friday",
            "from": {"name": "Ann Example", "address": "ann@example.com"},
            "to": [{"name": "Bob Example", "address": "bob@example.com"},
                   {"name": "Carol Example", "address": "carol@example.com"}],
            "messageId": f"<{i}.1732700000@mail.example.com>", "fail": fail}


def snapshot(conn: redis.Redis) -> tuple[int, int, int]:
    """Keys, used_memory, and used_memory_dataset (without the clients' buffers and Redis's own)."""
    memory = conn.info("memory")
    return conn.dbsize(), int(memory["used_memory"]), int(memory["used_memory_dataset"])


def footprint(conn: redis.Redis, registry_key: str, sample: int = 200) -> float:
    """Mean bytes (MEMORY USAGE) of a kept job's hash and result stream, over a sample."""
    ids = [i.decode() for i in conn.zrange(registry_key, -sample, -1)]  # the newest: not expiring yet
    keys = [(f"rq:job:{i}", f"rq:results:{i}") for i in ids if conn.exists(f"rq:job:{i}")]
    sizes = [sum(conn.memory_usage(key, samples=0) or 0 for key in pair) for pair in keys]  # every field
    return sum(sizes) / len(sizes) if sizes else 0.0


def key_kinds(conn: redis.Redis) -> str:
    kinds: dict[str, int] = {}
    for key in conn.scan_iter(count=1000):
        parts = key.decode().split(":")
        kind = ":".join(parts[:2]) if parts[0] in ("rq", "mp") else parts[0]
        kinds[kind] = kinds.get(kind, 0) + 1
    return ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--failing", type=int, default=1000, help="of those, events the receiver refuses")
    parser.add_argument("--keep-finished", type=int, default=30, help="WEBHOOK_KEEP_FINISHED for the run")
    parser.add_argument("--keep-failed-max", type=int, default=200,
                        help="WEBHOOK_KEEP_FAILED_MAX for the run")
    args = parser.parse_args()
    n, failing = args.events, args.failing
    with tempfile.TemporaryDirectory(prefix="mailpulse-bench-") as tmp:
        server = RedisServer(Path(tmp))
        server.start()
        receiver, url = start_receiver()
        conn = redis.Redis.from_url(server.url)
        var_dir = os.path.join(tmp, "var")
        env = dict(os.environ, REDIS_URL=server.url, VAR_DIR=var_dir, SERVICE_SECRET=SECRET,
                   PROMETHEUS_MULTIPROC_DIR=os.path.join(var_dir, "metrics"), LOG_LEVEL="ERROR",
                   WEBHOOK_ATTEMPTS="2", WEBHOOK_BACKOFF="0.5",
                   WEBHOOK_KEEP_FINISHED=str(args.keep_finished),
                   WEBHOOK_KEEP_FAILED_MAX=str(args.keep_failed_max))
        worker = subprocess.Popen([sys.executable, "-m", "workers.webhooks"], cwd=ROOT, env=env)
        try:
            SettingsStore(conn, KEYS).update({"webhooks": url, "webhooksEnabled": True})
            wait_for(lambda: conn.keys("rq:worker:*"), what="the webhooks process to register")
            time.sleep(2)  # its first heartbeats and maintenance rounds
            start = snapshot(conn)
            fail_every = n // failing if failing else 0
            for i in range(n):
                emit(conn, KEYS, "messageNew", account="bench", path="INBOX",
                     data=message(i, bool(fail_every) and i % fail_every == 0))
            queue = Queue(KEYS.queue("notify"), connection=conn)
            # Drained: nothing queued, held or waiting for a retry (moves between them are atomic).
            pending = (queue.started_job_registry.key, queue.scheduled_job_registry.key)
            wait_for(lambda: not conn.llen(queue.key) and not any(conn.zcard(k) for k in pending),
                     timeout=120 + n / 20, interval=0.5, what="every job to finish or fail")
            drained = snapshot(conn)
            ended = (queue.finished_job_registry.key, queue.failed_job_registry.key)
            finished_bytes, failed_bytes = (footprint(conn, key) for key in ended)
            time.sleep(args.keep_finished + 12)  # the keep time, then a trim round and Redis's expiry
            kept_failed = conn.zcard(queue.failed_job_registry.key)
            after = snapshot(conn)
            kinds_after = key_kinds(conn)
        finally:
            worker.terminate()
            worker.wait(60)
            receiver.terminate()
            receiver.wait(10)
            server.stop()
            shutil.rmtree(_metrics_dir, ignore_errors=True)

    def per_1000(value: float) -> float:
        return value * 1000 / n

    print(f"{n} events, {failing} failing; WEBHOOK_KEEP_FINISHED={args.keep_finished}, "
          f"WEBHOOK_KEEP_FAILED_MAX={args.keep_failed_max}; cpus {os.cpu_count()}, "
          f"load {os.getloadavg()[0]:.1f}")
    print(f"{'':36}{'keys':>7}{'used_memory MB':>16}{'dataset MB':>12}{'keys/1000 ev':>14}{'MB/1000 ev':>12}")
    rows = (("start (worker running, queue empty)", start), ("drained (recent jobs still kept)", drained),
            ("after the keep times", after))
    for label, (keys, memory, dataset) in rows:
        print(f"{label:36}{keys:>7}{memory / 1e6:>16.2f}{dataset / 1e6:>12.2f}"
              f"{per_1000(keys - start[0]):>14.1f}{per_1000(memory - start[1]) / 1e6:>12.3f}")
    print(f"footprint of a kept job (MEMORY USAGE of its hash and results): "
          f"finished {finished_bytes / 1024:.2f} KiB, failed {failed_bytes / 1024:.2f} KiB")
    print(f"kept failed jobs: {kept_failed}; keys beyond them: {after[0] - start[0] - 2 * kept_failed} "
          f"(a kept failure is its job hash and its result stream)")
    print(f"memory after the keep times: used_memory {(after[1] - start[1]) / 1e6:+.2f} MB, "
          f"dataset {(after[2] - start[2]) / 1e6:+.2f} MB from the start")
    print(f"keys left: {kinds_after}")


if __name__ == "__main__":
    main()
