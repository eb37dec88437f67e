"""Benchmark: N IMAP accounts on one Dovecot, held by one `workers.imap` process.

    .venv/bin/python bench/imap.py --accounts 200
    .venv/bin/python bench/imap.py --accounts 1000
    .venv/bin/python bench/imap.py --big 100000

`--big N` (bench/imap_big.py) measures instead the cost of one change in an N-message INBOX next
to a 10-message one, in the same run.

Starts its own redis-server, Dovecot (tests/support/dovecot.py: a uid per user, so every IDLE
session gets inotify), a loopback receiver and one webhooks process. Then one IMAP process
starts with no accounts (its RSS then is the baseline), N accounts are created through the
account store, and it prints: the time until all N are `connected` (from the first account's
creation), the process's RSS and RSS per account once settled, and the APPEND -> messageNew
webhook latency p50/p99 over --samples messages appended one at a time to random accounts while
all the others sit in IDLE. Not a test: it prints figures and checks nothing.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
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
from imap_big import percentile, run_big  # noqa: E402  (beside this file)

from shared.keys import Keys  # noqa: E402
from shared.stores.accounts import AccountStore  # noqa: E402
from shared.stores.settings import SettingsStore  # noqa: E402
from support.dovecot import Dovecot  # noqa: E402
from support.receiver import Receiver  # noqa: E402
from support.servers import RedisServer, wait_for  # noqa: E402

SECRET = "bench-secret-" + "0" * 20
KEYS = Keys("")


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def states(conn: redis.Redis, ids: list[str]) -> dict[str, int]:
    pipe = conn.pipeline(transaction=False)
    for account_id in ids:
        pipe.hget(KEYS.account(account_id), "state")
    counts: dict[str, int] = {}
    for state in pipe.execute():
        key = state.decode() if state else "none"
        counts[key] = counts.get(key, 0) + 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=200, help="accounts (Dovecot users) to hold")
    parser.add_argument("--samples", type=int, default=50, help="messages appended for the latency figures")
    parser.add_argument("--big", type=int, default=0,
                        help="instead: changes in an INBOX of this many messages next to a 10-message one")
    args = parser.parse_args()
    if args.big:
        run_big(args.big, args.samples)
        return
    n = args.accounts
    with tempfile.TemporaryDirectory(prefix="mailpulse-bench-") as tmp:
        redis_server = RedisServer(Path(tmp))
        redis_server.start()
        redis_url = redis_server.url
        dovecot = Dovecot()
        dovecot.start()
        conn = redis.Redis.from_url(redis_url)
        env = dict(os.environ, REDIS_URL=redis_url, VAR_DIR=os.path.join(tmp, "var"), SERVICE_SECRET=SECRET,
                   PROMETHEUS_MULTIPROC_DIR=os.path.join(tmp, "metrics"), LOG_LEVEL="WARNING")
        procs = []
        with Receiver() as receiver:
            try:
                SettingsStore(conn, KEYS).update({"webhooks": receiver.url + "/hook", "webhooksEnabled": True,
                                                  "webhookEvents": ["messageNew"]})
                procs.append(subprocess.Popen([sys.executable, "-m", "workers.webhooks"], cwd=ROOT, env=env))
                imap = subprocess.Popen([sys.executable, "-m", "workers.imap"], cwd=ROOT, env=env)
                procs.append(imap)
                time.sleep(5)
                baseline = rss_mib(imap.pid)
                ids = [f"bench{i:04d}" for i in range(n)]
                for account_id in ids:
                    dovecot.add_user(account_id, "pw")
                store = AccountStore(conn, KEYS, SECRET)
                started = time.monotonic()
                for account_id in ids:
                    store.create({"account": account_id, "name": account_id,
                                  "imap": dovecot.settings(account_id)})
                wait_for(lambda: states(conn, ids).get("connected", 0) == n, timeout=600, interval=0.2,
                         what=f"{n} accounts connected (now {states(conn, ids)})")
                connect_all = time.monotonic() - started
                time.sleep(10)  # settle: initial syncs done, every session in IDLE
                rss = rss_mib(imap.pid)

                def arrived(subject):
                    with receiver.lock:
                        return next((r.at for r in receiver.requests
                                     if r.json["data"].get("subject") == subject), None)

                latencies = []
                for i in range(args.samples):
                    account_id = random.choice(ids)
                    sent = time.time()
                    dovecot.append(account_id, subject=f"bench {i}")
                    latencies.append(wait_for(lambda i=i: arrived(f"bench {i}"), timeout=60, interval=0.01,
                                              what=f"bench {i}") - sent)
                    time.sleep(0.2)
                # Back-to-back: a second message on the same account right after the first one.
                second = []
                for i in range(max(1, args.samples // 5)):
                    account_id = random.choice(ids)
                    with dovecot.client(account_id) as client:
                        dovecot.append_with(client, f"first {i}", "b@example.com", "a@example.com")
                        sent = time.time()
                        dovecot.append_with(client, f"second {i}", "b@example.com", "a@example.com")
                    second.append(wait_for(lambda i=i: arrived(f"second {i}"), timeout=60, interval=0.01,
                                           what=f"second {i}") - sent)
                    time.sleep(0.2)
                print(f"accounts {n}, cpus {os.cpu_count()}, final states {states(conn, ids)}")
                print(f"time to connect all: {connect_all:.1f} s")
                print(f"imap process RSS: {baseline:.1f} MiB with 0 accounts, {rss:.1f} MiB with {n} "
                      f"({(rss - baseline) * 1024 / n:.0f} KiB per account)")
                p50, p99 = (percentile(latencies, p) * 1000 for p in (50, 99))
                print(f"APPEND -> messageNew webhook, {len(latencies)} samples: p50 {p50:.0f} ms, "
                      f"p99 {p99:.0f} ms, max {max(latencies) * 1000:.0f} ms")
                print(f"back-to-back, the second message on one account, {len(second)} samples: "
                      f"p50 {percentile(second, 50) * 1000:.0f} ms, max {max(second) * 1000:.0f} ms")
            finally:
                for proc in procs:
                    proc.terminate()
                for proc in procs:
                    proc.wait(60)
                dovecot.close()
                redis_server.stop()
                shutil.rmtree(_metrics_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
