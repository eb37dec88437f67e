"""`bench/imap.py --big N`: the cost of one change in an N-message INBOX next to a 10-message one.

One Dovecot, two accounts (INBOX of 10 and of N messages, delivered before the accounts exist),
one IMAP process, one webhooks process, a loopback receiver, all in one run. Printed: the time
of the big account's initial baseline; APPEND -> messageNew and STORE -> messageUpdated latency
(p50, p90) for each mailbox, samples taken alternately; and Redis's CPU time and commands per
change (INFO around each change, less the background rate measured while nothing changes).
Dovecot stores mail as mdbox here (index-based): with Maildir, Dovecot itself rescans the N
files of cur/ after each flag change. Goals (issue 13, at N = 100,000): both
latencies within 1.5x of the small mailbox's, Redis CPU per change within 2x.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from shared.keys import Keys
from shared.stores.accounts import AccountStore
from shared.stores.settings import SettingsStore
from support.dovecot import Dovecot
from support.receiver import Receiver
from support.servers import RedisServer, wait_for

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-secret-" + "0" * 20
KEYS = Keys("")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def _message(subject: str) -> bytes:
    return (f"Subject: {subject}\r\nFrom: Bob <bob@example.com>\r\nTo: a@example.com\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}@bench.test>\r\n\r\nOld mail.\r\n").encode()


def background(conn: redis.Redis, seconds: float) -> tuple[float, float]:
    """Redis CPU seconds and commands per second with nothing changing (heartbeats, renewals,
    balancing rounds, the webhooks worker's polling): subtracted from each change's window."""
    cpu, cmds = redis_cost(conn)
    time.sleep(seconds)
    cpu_after, cmds_after = redis_cost(conn)
    return (cpu_after - cpu) / seconds, (cmds_after - cmds - 2) / seconds


def _subject(subject: str):
    return lambda data: data.get("subject") == subject


def _flagged(uid: int):
    return lambda data: data.get("uid") == uid and "\\Flagged" in data["changes"]["flags"]["added"]


def redis_cost(conn: redis.Redis) -> tuple[float, int]:
    cpu, stats = conn.info("cpu"), conn.info("stats")
    return cpu["used_cpu_user"] + cpu["used_cpu_sys"], int(stats["total_commands_processed"])


def run_big(n: int, samples: int) -> None:
    samples = max(samples, 10)
    with tempfile.TemporaryDirectory(prefix="mailpulse-bench-") as tmp:
        redis_server = RedisServer(Path(tmp))
        redis_server.start()
        conn = redis.Redis.from_url(redis_server.url)
        # mdbox, not the tests' Maildir: Dovecot rescans a Maildir's cur/ (N files) after every
        # flag change, which would measure Maildir, not mailpulse.
        dovecot = Dovecot(extra_config="mail_location = mdbox:~/mdbox")
        dovecot.start()
        procs = []
        env = dict(os.environ, REDIS_URL=redis_server.url, VAR_DIR=os.path.join(tmp, "var"),
                   SERVICE_SECRET=SECRET, PROMETHEUS_MULTIPROC_DIR=os.path.join(tmp, "metrics"),
                   LOG_LEVEL="WARNING")
        try:
            sizes = {"small": 10, "big": n}
            dovecot.add_users({user: "pw" for user in sizes})
            time.sleep(2)  # Dovecot sees the new passwd-file by its mtime
            for user, size in sizes.items():
                with dovecot.client(user) as client:
                    for start in range(0, size, 500):
                        batch = [_message(f"old {i}") for i in range(start, min(size, start + 500))]
                        client.multiappend("INBOX", batch)
                    assert client.select_folder("INBOX")[b"EXISTS"] == size
            with Receiver() as receiver:
                SettingsStore(conn, KEYS).update({"webhooks": receiver.url + "/hook", "webhooksEnabled": True,
                                                  "webhookEvents": ["messageNew", "messageUpdated"]})
                procs.append(subprocess.Popen([sys.executable, "-m", "workers.webhooks"], cwd=ROOT, env=env))
                procs.append(subprocess.Popen([sys.executable, "-m", "workers.imap"], cwd=ROOT, env=env))
                time.sleep(3)
                store = AccountStore(conn, KEYS, SECRET)
                started = time.monotonic()
                for user in sizes:
                    store.create({"account": user, "name": user, "imap": dovecot.settings(user)})

                def connected(user):
                    return conn.hget(KEYS.account(user), "state") == b"connected"

                wait_for(lambda: connected("big") and connected("small"), timeout=3600, interval=0.1,
                         what="both accounts connected")
                baseline = time.monotonic() - started
                time.sleep(3)

                def arrived(event, account, match):
                    with receiver.lock:
                        return next((r.at for r in receiver.requests if r.json["event"] == event
                                     and r.json["account"] == account and match(r.json["data"])), None)

                idle_cpu, idle_cmds = background(conn, 20)
                latency = {(u, kind): [] for u in sizes for kind in ("new", "flags")}
                cost = {u: [0.0, 0] for u in sizes}
                clients = {u: dovecot.client(u) for u in sizes}
                for client in clients.values():
                    client.select_folder("INBOX")
                for i in range(samples):
                    for user in sizes:  # alternately, so that load changes touch both alike
                        cpu, cmds = redis_cost(conn)
                        window = time.monotonic()
                        subject = f"bench {user} {i}"
                        sent = time.time()
                        dovecot.append_with(clients[user], subject, "b@example.com", "a@example.com")
                        at = wait_for(lambda s=subject, a=user: arrived("messageNew", a, _subject(s)),
                                      timeout=60, interval=0.005, what=subject)
                        latency[(user, "new")].append(at - sent)
                        uid = 1 + i  # an old message: flagged once each
                        sent = time.time()
                        clients[user].add_flags([uid], [b"\\Flagged"])
                        at = wait_for(lambda u=uid, a=user: arrived("messageUpdated", a, _flagged(u)),
                                      timeout=60, interval=0.005, what=f"flag {user} {uid}")
                        latency[(user, "flags")].append(at - sent)
                        time.sleep(0.3)  # the webhook of the last change delivered: its Redis work counted
                        cpu_after, cmds_after = redis_cost(conn)
                        window = time.monotonic() - window
                        cost[user][0] += cpu_after - cpu - idle_cpu * window
                        cost[user][1] += cmds_after - cmds - 2 - idle_cmds * window  # and the two INFO calls
                for client in clients.values():
                    client.logout()
            rss = os.popen(f"ps -o rss= -p {procs[1].pid}").read().strip()
            print(f"INBOX of {n} messages next to one of 10; {samples} samples each; cpus {os.cpu_count()}")
            print(f"initial baseline of both accounts (first sight of the {n}-message INBOX): "
                  f"{baseline:.1f} s; imap process RSS afterwards {int(rss) / 1024:.0f} MiB")
            for kind, what in (("new", "APPEND -> messageNew"), ("flags", "STORE +FLAGS -> messageUpdated")):
                small, big = (percentile(latency[(u, kind)], 50) * 1000 for u in ("small", "big"))
                p90 = [percentile(latency[(u, kind)], 90) * 1000 for u in ("small", "big")]
                print(f"{what}: p50 {small:.0f} ms (10) vs {big:.0f} ms ({n}), ratio {big / small:.2f} "
                      f"(goal <= 1.5); p90 {p90[0]:.0f} vs {p90[1]:.0f} ms")
            per_change = {u: (cost[u][0] / (2 * samples) * 1e6, cost[u][1] / (2 * samples)) for u in sizes}
            (small_cpu, small_cmds), (big_cpu, big_cmds) = per_change["small"], per_change["big"]
            print(f"Redis CPU per change: {small_cpu:.0f} us (10) vs {big_cpu:.0f} us ({n}), ratio "
                  f"{big_cpu / small_cpu:.2f} (goal <= 2); commands per change {small_cmds:.1f} vs "
                  f"{big_cmds:.1f}")
            print(f"background (subtracted): {idle_cpu * 1e6:.0f} us Redis CPU and {idle_cmds:.1f} commands "
                  f"per second; load average at the end: {os.getloadavg()[0]:.2f}")
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(120)
            dovecot.close()
            redis_server.stop()
            shutil.rmtree(os.environ.get("PROMETHEUS_MULTIPROC_DIR", "/nonexistent"), ignore_errors=True)
