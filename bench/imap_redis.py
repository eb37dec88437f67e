"""Benchmark: Redis commands per second of one IMAP process at steady state, by number of accounts.

    .venv/bin/python bench/imap_redis.py --accounts 1000,20000

For each size, in one run against its own redis-server: N accounts whose IMAP server refuses
connections (a closed loopback port: every session sits in connectError and retries with
backoff), one `workers.imap` process holding all of them. Once every account has failed once
(steady state), Redis's `total_commands_processed` is read over --window seconds; the bench's
own INFO calls are subtracted. The goal (issue 13): the same figure at every size, because
balancing, lease renewal and the change log cost the same however many accounts there are, and
a session that retries costs Redis nothing. Not a test: it prints figures and checks nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="mailpulse-bench-metrics-")

import redis  # noqa: E402

from shared.keys import Keys  # noqa: E402
from shared.stores.accounts import AccountStore  # noqa: E402
from support.servers import RedisServer, free_port, wait_for  # noqa: E402

SECRET = "bench-secret-" + "0" * 20
KEYS = Keys("")


def commands(conn: redis.Redis) -> int:
    return int(conn.info("stats")["total_commands_processed"])


def measure(n: int, window: float, tmp: str) -> tuple[float, float]:
    """(commands per second at steady state, seconds until every account had failed once)."""
    server = RedisServer(Path(tmp))
    server.start()
    conn = redis.Redis.from_url(server.url)
    refusing = free_port()  # nothing listens there: connection refused at once
    store = AccountStore(conn, KEYS, SECRET)
    for i in range(n):
        store.create({"account": f"a{i:05d}", "name": "bench",
                      "imap": {"host": "127.0.0.1", "port": refusing, "secure": False,
                               "auth": {"user": "u", "pass": "p"}}})
    env = dict(os.environ, REDIS_URL=server.url, VAR_DIR=os.path.join(tmp, "var"), SERVICE_SECRET=SECRET,
               PROMETHEUS_MULTIPROC_DIR=os.path.join(tmp, "metrics"), LOG_LEVEL="WARNING",
               IMAP_LOGIN_RATE="500")  # steady state sooner than at the default 20/s
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "workers.imap"], cwd=ROOT, env=env)
    try:
        def all_failed():
            pipe = conn.pipeline(transaction=False)
            for i in range(0, n, max(1, n // 200)):  # a sample of the accounts
                pipe.hget(KEYS.account(f"a{i:05d}"), "state")
            return all(s == b"connectError" for s in pipe.execute())

        wait_for(all_failed, timeout=900, interval=1, what="every account in connectError")
        ramp = time.monotonic() - started
        time.sleep(10)  # the last announcements and first retries settle
        before, at = commands(conn), time.monotonic()
        time.sleep(window)
        after, until = commands(conn), time.monotonic()
        return (after - before - 1) / (until - at), ramp  # the second INFO counts itself
    finally:
        proc.terminate()
        proc.wait(120)
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", default="1000,20000", help="comma-separated sizes")
    parser.add_argument("--window", type=float, default=60, help="seconds measured at steady state")
    args = parser.parse_args()
    sizes = [int(s) for s in args.accounts.split(",")]
    results = {}
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="mailpulse-bench-") as tmp:
            results[n] = measure(n, args.window, tmp)
        print(f"{n:>7} accounts: {results[n][0]:6.2f} Redis commands/s at steady state "
              f"(every account failed once after {results[n][1]:.0f} s)", flush=True)
    base = results[sizes[0]][0]
    for n in sizes[1:]:
        print(f"{n} accounts / {sizes[0]} accounts: {results[n][0] / base:.2f}x (goal: 1.0x)")
    print(f"load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cpus")


if __name__ == "__main__":
    main()
