"""Benchmark: messages/s one `workers.submit` process delivers, next to two plain smtplib loops
in the same run (one connection per message, and one reused connection), against two receivers:

- `postfix`: a private Postfix on loopback (the issue's "local MTA"), in two variants, each
  printed (--postfix picks one): `discard` answers 250 once the message is queued on disk, as
  always, then discards it instead of delivering; `lmtp` relays it into Dovecot over LMTP, whose
  delivery (about 4-5 ms of CPU per message, bench/mta_ceiling.py) then shares the 2 cores with
  the clients being timed and caps every client near one loop's rate. The line "N smtplib
  connections at once" shows what each takes (context, not a baseline).
- `latency`: an aiosmtpd receiver (bench/slow_smtp.py, its own process) that answers DATA after
  --latency-ms, as a remote submission server does. Here sending concurrently and reusing
  connections have latency to hide.

    .venv/bin/python bench/submit.py --messages 300 [--receiver postfix|latency|both]
        [--postfix discard|lmtp|both] [--copy] [--rounds 3]

Every side sends the same 2 KB message to one recipient. The submit process appends nothing to a
Sent folder (its account has no IMAP settings), as the loops don't; --copy adds a run where it
does (IMAP APPEND into Dovecot after each send), printed on its own line. The submit process's
rate counts from the first message recorded sent to the last (the jobs' ended_at), so process
start-up is not counted; the loops are timed around their sends.
Goal: >= 3x the first loop and >= 1.5x the second. Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import email.policy
import os
import resource
import smtplib
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="mailpulse-bench-metrics-")

import redis  # noqa: E402
from rq.registry import FinishedJobRegistry  # noqa: E402

from shared.keys import Keys  # noqa: E402
from shared.mail.submit_queue import SubmitQueue  # noqa: E402
from support.dovecot import Dovecot  # noqa: E402
from support.imap import store  # noqa: E402
from support.postfix import Postfix  # noqa: E402
from support.servers import Process, RedisServer, base_env, free_port, wait_for  # noqa: E402

# Postfix's variants (--postfix): what it does with a message after its 250 (queued on disk, fsync'd,
# either way). `discard`: qmgr hands each queued message to the discard transport instead of LMTP,
# so that Dovecot's delivery work does not share the 2 cores with the clients being timed.
POSTFIX_SETTINGS = {"lmtp": {}, "discard": {"default_transport": "discard", "relay_transport": "discard"}}
POSTFIX_TITLES = {"lmtp": "receiver: Postfix on loopback, relaying into Dovecot over LMTP",
                  "discard": "receiver: Postfix on loopback, queueing to disk, then discarding (no delivery)"}
POSTFIX_TRANSPORTS = {"lmtp": ("lmtp",), "discard": ("discard",), "both": ("discard", "lmtp")}
RCPT = "sink@example.test"
SENDER = "bench@example.test"


def message(n: int) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = SENDER, RCPT, f"bench {n}"
    msg["Message-ID"] = f"<bench-{n}-{time.time_ns()}@example.test>"
    msg.set_content("x" * 2000)
    return msg.as_bytes(policy=email.policy.SMTP)  # CRLF, as the submit API builds it (aiosmtpd insists)


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU time of a process (this one by default)."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def loop(port: int, n: int, reuse: bool, cpu: list | None = None) -> float:
    cpu_before = cpu_seconds()
    started = time.perf_counter()
    conn = smtplib.SMTP("127.0.0.1", port) if reuse else None
    for i in range(n):
        if not reuse:
            conn = smtplib.SMTP("127.0.0.1", port)
        conn.sendmail(SENDER, [RCPT], message(i))
        if not reuse:
            conn.quit()
    if reuse:
        conn.quit()
    rate = n / (time.perf_counter() - started)
    if cpu is not None:
        cpu.append((cpu_seconds() - cpu_before) / n)
    return rate


def parallel(port: int, n: int, connections: int) -> float:
    """`connections` reused connections at once (threads): what the receiver can take."""
    per = n // connections
    with ThreadPoolExecutor(connections) as pool:
        started = time.perf_counter()
        list(pool.map(lambda _: loop(port, per, reuse=True), range(connections)))
        return per * connections / (time.perf_counter() - started)


def worker_rate(conn: redis.Redis, port: int, n: int, tmp: Path, redis_url: str, concurrency: int,
                imap: dict | None, cpu: list | None = None) -> float:
    conn.flushall()
    account = {"account": "bench", "name": "Bench", "email": SENDER,
               "smtp": {"host": "127.0.0.1", "port": port, "secure": False}}
    if imap:
        account["imap"] = imap
    store(conn).create(account)
    queue = SubmitQueue(conn, Keys(""))
    for i in range(n):
        queue.enqueue("bench", message(i), SENDER, [RCPT],
                      {"messageId": f"<b{i}@example.test>", "subject": f"bench {i}", "to": []}, None, None)
    env = base_env(redis_url, tmp, SUBMIT_CONCURRENCY=concurrency, LOG_LEVEL="WARNING")
    proc = Process("workers.submit", env, tmp / "submit.log")
    finished = FinishedJobRegistry(queue=queue.queue)
    try:
        wait_for(lambda: finished.count >= 1, timeout=60, interval=0.01, what="a message sent")
        cpu_before, done_before = cpu_seconds(proc.pid), finished.count  # start-up not counted
        wait_for(lambda: finished.count >= n, timeout=600, interval=0.2, what="every message sent")
        if cpu is not None and n > done_before:
            cpu.append((cpu_seconds(proc.pid) - cpu_before) / (n - done_before))
    finally:
        proc.stop()
    ended = [queue.queue.fetch_job(j).ended_at.timestamp() for j in finished.get_job_ids()]
    # From the first message recorded sent to the last (start-up not counted): n - 1 intervals.
    span = max(ended) - min(ended)
    return (n - 1) / span if span > 0 else float("inf")


def report(title: str, port: int, args, conn, tmp: Path, redis_url: str, copy_imap: dict | None,
           settle=lambda: None) -> None:
    """`settle()` waits until the receiver has done the work of the previous side (Postfix relays
    into Dovecot after its 250): no side is timed while the one before still loads the machine."""
    loop_cpu, worker_cpu = [], []
    per_message = loop(port, args.messages, reuse=False)
    settle()
    reused = loop(port, args.messages, reuse=True, cpu=loop_cpu)
    settle()
    together = parallel(port, args.messages, args.concurrency)
    settle()
    ours = worker_rate(conn, port, args.messages, tmp, redis_url, args.concurrency, None, worker_cpu)
    print(f"\n{title}")
    print(f"  smtplib, one connection per message:      {per_message:8.1f} messages/s")
    print(f"  smtplib, one reused connection:           {reused:8.1f} messages/s")
    print(f"  smtplib, {args.concurrency} reused connections at once:  {together:8.1f} messages/s"
          f"  (context: what this receiver takes)")
    print(f"  one mailpulse submit process:             {ours:8.1f} messages/s  "
          f"({ours / per_message:.2f}x the first, {ours / reused:.2f}x the second; goals 3x, 1.5x)")
    print(f"  CPU per message: the reused loop {loop_cpu[0] * 1000:.2f} ms (building each message too), "
          f"the submit process {worker_cpu[0] * 1000:.2f} ms (Redis bookkeeping and events too)")
    if copy_imap:
        settle()
        with_copy = worker_rate(conn, port, args.messages, tmp, redis_url, args.concurrency, copy_imap)
        print(f"  ... and appending each to Sent (IMAP):    {with_copy:8.1f} messages/s  "
              f"({with_copy / per_message:.2f}x, {with_copy / reused:.2f}x; the loops append nothing)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=20, help="SUBMIT_CONCURRENCY")
    parser.add_argument("--receiver", choices=("postfix", "latency", "both"), default="both")
    parser.add_argument("--latency-ms", type=float, default=50, help="the latency receiver's delay before "
                                                                     "it answers DATA")
    parser.add_argument("--postfix", choices=tuple(POSTFIX_TRANSPORTS), default="both",
                        help="after its 250, Postfix relays into Dovecot (lmtp) or discards the queued "
                             "message (discard)")
    parser.add_argument("--copy", action="store_true", help="also a run that appends to Sent")
    parser.add_argument("--rounds", type=int, default=1, help="rounds per receiver, each printed (the "
                                                               "figures of a shared machine vary)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mailpulse-bench-submit-"))
    server = RedisServer(tmp)
    server.start()
    dovecot = Dovecot(lmtp=True)
    dovecot.start()
    dovecot.add_users({RCPT: "pw", SENDER: "pw"})
    copy_imap = None
    if args.copy:
        copy_imap = dovecot.settings(SENDER)
        with dovecot.client(SENDER) as client:
            client.create_folder("Sent")
    print(f"messages: {args.messages}, SUBMIT_CONCURRENCY={args.concurrency}")
    try:
        conn = redis.Redis.from_url(server.url)
        for transport in POSTFIX_TRANSPORTS[args.postfix] if args.receiver in ("postfix", "both") else ():
            mta = Postfix(lmtp_port=dovecot.lmtp_port, settings=POSTFIX_SETTINGS[transport])
            mta.start()
            try:
                def relayed(mta=mta):
                    wait_for(lambda: "Mail queue is empty" in mta.queued(), timeout=300, interval=0.2,
                             what="Postfix's queue delivered")

                for _ in range(args.rounds):
                    report(POSTFIX_TITLES[transport], mta.port, args, conn, tmp, server.url, copy_imap,
                           relayed)
            finally:
                mta.close()
        if args.receiver in ("latency", "both"):
            port = free_port()
            slow = subprocess.Popen([sys.executable, str(ROOT / "bench" / "slow_smtp.py"), str(port),
                                     str(args.latency_ms)], stdout=subprocess.PIPE, text=True)
            try:
                slow.stdout.readline()  # "ready"
                for _ in range(args.rounds):
                    report(f"receiver: aiosmtpd answering DATA after {args.latency_ms:g} ms", port, args,
                           conn, tmp, server.url, copy_imap)
            finally:
                slow.terminate()
                slow.wait(10)
    finally:
        dovecot.close()
        server.stop()


if __name__ == "__main__":
    main()
