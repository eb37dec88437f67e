"""Benchmark: messages/s one `workers.submit` process delivers to a local MTA, next to two plain
smtplib loops in the same run (one connection per message, and one reused connection).

    .venv/bin/python bench/submit.py --messages 500

Starts its own redis-server, Dovecot (LMTP) and a private Postfix on loopback (tests/support).
The submit process's rate counts from the first message taken to the last one recorded as sent
(the jobs' started/ended times), so process start-up is not counted; the loops are timed around
their sends. Goal: >= 3x the first loop and >= 1.5x the second. Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import os
import smtplib
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="mailpulse-bench-metrics-")

import redis  # noqa: E402
from rq.registry import FinishedJobRegistry  # noqa: E402

from shared.keys import Keys  # noqa: E402
from shared.submit_queue import SubmitQueue  # noqa: E402
from support.dovecot import Dovecot  # noqa: E402
from support.imap import store  # noqa: E402
from support.postfix import Postfix  # noqa: E402
from support.servers import Process, RedisServer, base_env, wait_for  # noqa: E402

RCPT = "sink@example.test"


def message(n: int) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "bench@example.test", RCPT, f"bench {n}"
    msg["Message-ID"] = f"<bench-{n}-{time.time_ns()}@example.test>"
    msg.set_content("x" * 2000)
    return msg.as_bytes()


def loop(port: int, n: int, reuse: bool) -> float:
    started = time.perf_counter()
    conn = smtplib.SMTP("127.0.0.1", port) if reuse else None
    for i in range(n):
        if not reuse:
            conn = smtplib.SMTP("127.0.0.1", port)
        conn.sendmail("bench@example.test", [RCPT], message(i))
        if not reuse:
            conn.quit()
    if reuse:
        conn.quit()
    return n / (time.perf_counter() - started)


def worker_rate(conn: redis.Redis, mta: Postfix, n: int, tmp: Path, redis_url: str,
                concurrency: int) -> float:
    store(conn).create({"account": "bench", "name": "Bench", "email": "bench@example.test",
                        "smtp": {"host": "127.0.0.1", "port": mta.port, "secure": False}})
    queue = SubmitQueue(conn, Keys(""))
    for i in range(n):
        queue.enqueue("bench", message(i), "bench@example.test", [RCPT],
                      {"messageId": f"<b{i}@example.test>", "subject": f"bench {i}", "to": []}, None, None)
    env = base_env(redis_url, tmp, SUBMIT_CONCURRENCY=concurrency, LOG_LEVEL="WARNING")
    proc = Process("workers.submit", env, tmp / "submit.log")
    finished = FinishedJobRegistry(queue=queue.queue)
    try:
        wait_for(lambda: finished.count >= n, timeout=600, interval=0.2, what="every message sent")
    finally:
        proc.stop()
    ended = [queue.queue.fetch_job(j).ended_at.timestamp() for j in finished.get_job_ids()]
    # From the first message recorded sent to the last (start-up not counted): n - 1 intervals.
    span = max(ended) - min(ended)
    return (n - 1) / span if span > 0 else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=20, help="SUBMIT_CONCURRENCY")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mailpulse-bench-submit-"))
    server = RedisServer(tmp)
    server.start()
    dovecot = Dovecot(lmtp=True)
    dovecot.start()
    dovecot.add_user(RCPT, "pw")
    mta = Postfix(lmtp_port=dovecot.lmtp_port)
    mta.start()
    try:
        conn = redis.Redis.from_url(server.url)
        per_message = loop(mta.port, args.messages, reuse=False)
        reused = loop(mta.port, args.messages, reuse=True)
        ours = worker_rate(conn, mta, args.messages, tmp, server.url, args.concurrency)
        print(f"messages: {args.messages}, SUBMIT_CONCURRENCY={args.concurrency}")
        print(f"smtplib, one connection per message: {per_message:8.1f} messages/s")
        print(f"smtplib, one reused connection:      {reused:8.1f} messages/s")
        print(f"one mailpulse submit process:        {ours:8.1f} messages/s  "
              f"({ours / per_message:.2f}x the first, {ours / reused:.2f}x the second; goals 3x, 1.5x)")
    finally:
        mta.close()
        dovecot.close()
        server.stop()


if __name__ == "__main__":
    main()
