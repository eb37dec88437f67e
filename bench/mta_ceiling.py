"""What caps the messages/s the bench's local Postfix accepts (its 250 after DATA): 1, 4 and 20
smtplib clients, each its own process (no shared GIL) on one reused connection, against variants
of bench/submit.py's Postfix, with the machine's CPU over each run.

    .venv/bin/python bench/mta_ceiling.py [--messages 400] [--variants default,in_flow_delay=0,...]

A variant is `default` (relaying into Dovecot over LMTP, as tests/support/postfix.py), `discard`
(queued to disk, then discarded: bench/submit.py --postfix discard) or `name=value[;name=value]`
main.cf settings on top of the default (e.g. `in_flow_delay=0`). Per run it prints messages/s,
the idle share of both cores, and the CPU the whole machine spent per message (clients, Postfix,
Dovecot, kernel) next to the clients' own. `drain` is how long Postfix then took to empty its queue.
Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import smtplib
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

from submit import POSTFIX_SETTINGS, RCPT, SENDER, message  # noqa: E402

from support.dovecot import Dovecot  # noqa: E402
from support.postfix import Postfix  # noqa: E402
from support.servers import wait_for  # noqa: E402

DISCARD = ";".join(f"{k}={v}" for k, v in POSTFIX_SETTINGS["discard"].items())
NAMED = {"default": "", "discard": DISCARD, "in_flow_delay=0+discard": "in_flow_delay=0;" + DISCARD}


def client(port: int, n: int, go) -> None:
    messages = [message(i) for i in range(n)]
    go.wait()
    with smtplib.SMTP("127.0.0.1", port) as conn:
        for m in messages:
            conn.sendmail(SENDER, [RCPT], m)


def cpu() -> list[int]:
    return [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]


def run(port: int, total: int, clients: int) -> str:
    per = total // clients
    go = multiprocessing.Event()
    procs = [multiprocessing.Process(target=client, args=(port, per, go)) for _ in range(clients)]
    for p in procs:
        p.start()
    time.sleep(1)  # every client built its messages and waits
    before, children, started = cpu(), os.times(), time.perf_counter()
    go.set()
    for p in procs:
        p.join()
    elapsed, after, children_after = time.perf_counter() - started, cpu(), os.times()
    ticks = [b - a for a, b in zip(before, after, strict=True)]
    n, hz = per * clients, os.sysconf("SC_CLK_TCK")
    busy = (sum(ticks) - ticks[3] - ticks[4]) / hz * 1000 / n  # all but idle and iowait
    own = (children_after.children_user + children_after.children_system
           - children.children_user - children.children_system) * 1000 / n
    idle = 100 * ticks[3] / sum(ticks)
    return (f"{clients:2d} clients: {n / elapsed:6.1f} messages/s, idle {idle:3.0f} %, "
            f"CPU per message {busy:.2f} ms (the clients {own:.2f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--clients", default="1,4,20")
    parser.add_argument("--variants", default="default,in_flow_delay=0,discard,in_flow_delay=0+discard")
    args = parser.parse_args()
    dovecot = Dovecot(lmtp=True)
    dovecot.start()
    dovecot.add_users({RCPT: "pw", SENDER: "pw"})
    print(f"messages per run: {args.messages}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    try:
        for variant in args.variants.split(","):
            spec = NAMED.get(variant, variant)
            settings = dict(item.split("=", 1) for item in spec.split(";") if item)
            mta = Postfix(lmtp_port=dovecot.lmtp_port, settings=settings)
            mta.start()
            try:
                def drained(mta=mta):
                    started = time.perf_counter()
                    wait_for(lambda: "Mail queue is empty" in mta.queued(), timeout=300, interval=0.1,
                             what="Postfix's queue delivered")
                    return time.perf_counter() - started

                print(f"\n{variant}")
                for clients in (int(c) for c in args.clients.split(",")):
                    drained()
                    line = run(mta.port, args.messages, clients)
                    print(f"  {line}, drain {drained():.1f} s", flush=True)
            finally:
                mta.close()
    finally:
        dovecot.close()


if __name__ == "__main__":
    main()
