"""Benchmark: webhook deliveries/s of one `workers.webhooks` process vs rq's SimpleWorker.

    .venv/bin/python bench/webhooks.py --events 2000 --latency-ms 200
    .venv/bin/python bench/webhooks.py --events 2000 --latency-ms 0
    .venv/bin/python bench/webhooks.py --fairness   # another target beside a slow one (webhooks_fairness.py)

Starts its own redis-server and a loopback receiver (a separate process that answers after the
chosen latency), queues N events through shared.events.emit, lets one webhooks process deliver
them, then has rq's SimpleWorker deliver the same number of events as a plain job
(bench/plain_job.py). Rate = jobs / (last job's end - first job's start), from the rq job
records, so process start-up is not counted. Not a test: it prints figures and checks nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
_metrics_dir = tempfile.mkdtemp(prefix="mailpulse-bench-metrics-")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir  # before anything imports prometheus_client

import redis  # noqa: E402
from rq import Queue  # noqa: E402
from rq.job import Job  # noqa: E402

from shared.events import build_payload, emit  # noqa: E402
from shared.keys import Keys  # noqa: E402
from shared.stores.settings import SettingsStore  # noqa: E402
from support.servers import RedisServer, free_port, wait_for  # noqa: E402

SECRET = "bench-secret-" + "0" * 20
KEYS = Keys("")


def start_receiver(latency: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    code = ("import sys; sys.path.insert(0, 'tests'); from support.receiver import Receiver; "
            f"Receiver(latency={latency}, port={port}).server.serve_forever()")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)

    def listening():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    wait_for(listening, what="the receiver")
    return proc, f"http://127.0.0.1:{port}/hook"


def rate(conn: redis.Redis, job_ids: list[str]) -> tuple[float, int]:
    jobs = [j for j in Job.fetch_many(job_ids, connection=conn) if j is not None]
    finished = [j for j in jobs if j.get_status(refresh=False) == "finished"]
    start = min(j.started_at for j in finished)
    end = max(j.ended_at for j in finished)
    return len(finished) / max((end - start).total_seconds(), 1e-9), len(finished)


def wait_finished(conn: redis.Redis, queue: Queue, n: int, timeout: float) -> None:
    wait_for(lambda: conn.zcard(queue.finished_job_registry.key) >= n, timeout=timeout, interval=0.2,
             what=f"{n} finished jobs")


def bench_mailpulse(conn, redis_url, url, n, concurrency, var_dir, latency) -> tuple[float, int]:
    SettingsStore(conn, KEYS).update({"webhooks": url, "webhooksEnabled": True})
    job_ids = [emit(conn, KEYS, "messageNew", account="bench", data={"i": i}) for i in range(n)]
    env = dict(os.environ, REDIS_URL=redis_url, VAR_DIR=var_dir, SERVICE_SECRET=SECRET,
               PROMETHEUS_MULTIPROC_DIR=os.path.join(var_dir, "metrics"),
               WEBHOOK_CONCURRENCY=str(concurrency), LOG_LEVEL="WARNING")
    worker = subprocess.Popen([sys.executable, "-m", "workers.webhooks"], cwd=ROOT, env=env)
    try:
        queue = Queue(KEYS.queue("notify"), connection=conn)
        wait_finished(conn, queue, n, timeout=60 + n * (latency + 0.01))
    finally:
        worker.terminate()
        worker.wait(30)
    return rate(conn, job_ids)


def bench_simple_worker(conn, redis_url, url, n, latency) -> tuple[float, int]:
    queue = Queue("bench-simple", connection=conn)
    job_ids = []
    for i in range(n):
        payload = build_payload("messageNew", "bench", {"i": i})
        job_ids.append(queue.enqueue("plain_job.deliver", url, SECRET, payload, f"event-{i}").id)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "bench"))
    subprocess.run([str(Path(sys.executable).parent / "rq"), "worker", "--burst", "--url", redis_url,
                    "--worker-class", "rq.worker.SimpleWorker", "--logging_level", "WARNING", "bench-simple"],
                   cwd=ROOT, env=env, check=True, timeout=60 + n * (latency + 0.05))
    return rate(conn, job_ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000, help="events for the webhooks process")
    parser.add_argument("--latency-ms", type=float, default=200, help="receiver latency per request")
    parser.add_argument("--concurrency", type=int, default=200, help="WEBHOOK_CONCURRENCY (the default's)")
    parser.add_argument("--simple-events", type=int, default=None,
                        help="events for rq's SimpleWorker (default: about 10 s worth, at most --events)")
    parser.add_argument("--fairness", action="store_true",
                        help="measure another target's latency beside a slow receiver's backlog instead")
    parser.add_argument("--backlog", type=int, default=300, help="--fairness: events for the slow receiver")
    parser.add_argument("--slow-ms", type=float, default=5000, help="--fairness: the slow receiver's latency")
    args = parser.parse_args()
    if args.fairness:
        return fairness(args)
    latency = args.latency_ms / 1000
    simple_n = args.simple_events or min(args.events, max(20, int(10 / latency) if latency else args.events))
    with tempfile.TemporaryDirectory(prefix="mailpulse-bench-") as tmp:
        redis_server = RedisServer(Path(tmp))
        redis_server.start()
        redis_url = redis_server.url
        receiver_proc, url = start_receiver(latency)
        conn = redis.Redis.from_url(redis_url)
        try:
            ours, ours_n = bench_mailpulse(conn, redis_url, url, args.events, args.concurrency,
                                           os.path.join(tmp, "var"), latency)
            print(f"receiver latency {args.latency_ms:g} ms, cpus {os.cpu_count()}")
            print(f"mailpulse webhooks process (concurrency {args.concurrency}): "
                  f"{ours_n} deliveries, {ours:.1f} deliveries/s")
            conn.flushall()
            simple, simple_n = bench_simple_worker(conn, redis_url, url, simple_n, latency)
            print(f"rq SimpleWorker, plain job: {simple_n} deliveries, {simple:.1f} deliveries/s")
            print(f"ratio: {ours / simple:.1f}x")
        finally:
            receiver_proc.terminate()
            receiver_proc.wait(10)
            redis_server.stop()
            shutil.rmtree(_metrics_dir, ignore_errors=True)


def fairness(args) -> None:
    import webhooks_fairness  # bench/, beside this file

    with tempfile.TemporaryDirectory(prefix="mailpulse-bench-") as tmp:
        redis_server = RedisServer(Path(tmp))
        redis_server.start()
        var_dir = os.path.join(tmp, "var")
        env = dict(os.environ, REDIS_URL=redis_server.url, VAR_DIR=var_dir, SERVICE_SECRET=SECRET,
                   PROMETHEUS_MULTIPROC_DIR=os.path.join(var_dir, "metrics"), LOG_LEVEL="WARNING")
        try:
            webhooks_fairness.run(redis.Redis.from_url(redis_server.url), KEYS, env, ROOT,
                                  args.backlog, args.slow_ms)
        finally:
            redis_server.stop()
            shutil.rmtree(_metrics_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
