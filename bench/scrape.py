"""Scrape time after K dead processes: mailpulse's collector next to the stock one.

    .venv/bin/python bench/scrape.py [--k 0,1000,10000] [--runs 100]

For each K, in a fresh process: one fold pass lists this (live) process, then K real processes
(forked children) record metrics the way workers do and exit without cleaning up: they all die
after the last pass, the worst case. Then, over the same directory in the same run:
- stock: prometheus_client's MultiProcessCollector + generate_latest, reading every file;
- first: our first scrapes right after the K deaths (median of the first 5: one scrape is about
  a millisecond, within the machine's noise), with the folder (web/folding.py, a child process as
  in the web process) started at the same moment and folding them meanwhile;
- during: the median of scrapes taken every 50 ms while the folder catches up;
- catch-up: how long the folder takes to fold the K (reported apart: it is off the scrape path);
- ours: the steady-state scrape once folded (median).
Figures are medians over --runs scrapes (the first scrape is one); compare ratios, not absolute
times (noisy machines).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def record_like_a_worker(metrics) -> None:
    metrics.imap_responses.labels(response="OK", code="").inc(3)
    metrics.webhooks.labels(status="success", event="messageNew").inc()
    metrics.webhook_req.observe(120)
    metrics.imap_connections.labels(status="connected").set(1)


def make_dead_processes(count: int, metrics) -> None:
    """Fork `count` children that record like a worker and exit without cleaning up."""
    for i in range(count):
        pid = os.fork()
        if pid == 0:
            try:
                record_like_a_worker(metrics)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        if i and i % 2000 == 0:
            print(f"  ... {i} processes made", file=sys.stderr, flush=True)


def median_ms(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


FIRST = 5  # scrapes right after the deaths whose median is the "first scrape" figure


def caught_up(directory: str, live: set[str]) -> bool:
    """Whether the folder has folded every dead process: only live processes' files are left."""
    from shared.metrics import directory as metricsdir

    return all(metricsdir.parse_file_name(n)[1] in live for n in os.listdir(directory) if n.endswith(".db"))


def measure(k: int, runs: int, directory: str) -> tuple:
    """(files, stock ms, first ms, during catch-up ms, ours ms, catch-up s) for K dead processes."""
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory  # before prometheus_client is imported
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    from shared.metrics import directory as metricsdir

    metricsdir.use_instance_ids()
    from shared.metrics import definitions as metrics
    from shared.metrics import folding
    from web.collectors.multiprocess import FoldedMultiProcessCollector
    from web.exposition import render

    def ours():  # what each scrape of the web process does: read, write
        render(FoldedMultiProcessCollector(directory).collect())

    record_like_a_worker(metrics)  # this live process: the same series at every K
    folding.fold_pass(directory)  # the last pass before the deaths: it lists only this process
    ours()  # a web process that has been scraped before: its caches are warm
    make_dead_processes(k, metrics)
    files = len([n for n in os.listdir(directory) if n.endswith(".db")])

    def stock():
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)
        generate_latest(registry)

    stock_ms = median_ms(stock, max(3, runs // 3) if k >= 10000 else runs)
    folder = subprocess.Popen([sys.executable, "-m", "web.folding", "--parent", str(os.getpid())],
                              cwd=ROOT, env=dict(os.environ, LOG_LEVEL="WARNING"))
    try:
        started = time.perf_counter()
        first = [median_ms(ours, 1) for _ in range(FIRST)]  # one scrape is ~1 ms: a few, for noise
        live = {metricsdir.instance_id(), metricsdir.instance_id(folder.pid)}
        during, checked = [], time.monotonic()
        while True:  # scrapes keep coming while the folder catches up
            during.append(median_ms(ours, 1))
            time.sleep(0.05)
            if time.monotonic() - checked >= 0.5:  # listing 30,000 names is no scrape's cost
                if caught_up(directory, live):
                    break
                checked = time.monotonic()
        catch_up = time.perf_counter() - started
        time.sleep(1)  # a scrape comes every 15 s or so: by then the folder has settled
        ours_ms = median_ms(ours, runs)
    finally:
        folder.terminate()
        folder.wait(10)
    first_ms = statistics.median(first)
    during_ms = statistics.median(during) if during else first_ms
    return files, stock_ms, first_ms, during_ms, ours_ms, catch_up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--k", default="0,1000,10000", help="numbers of dead processes, comma-separated")
    parser.add_argument("--runs", type=int, default=100,
                        help="scrapes per steady figure (median; one scrape is under a millisecond, so many)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: one K, fresh process
    args = parser.parse_args()
    base = tempfile.mkdtemp(prefix="mailpulse-bench-scrape-")
    if args.one is not None:
        directory = os.path.join(base, "metrics")
        os.makedirs(directory)
        print(*measure(args.one, args.runs, directory))
        return
    print(f"{'K dead':>8} {'files':>7} {'stock ms':>9} {'first ms':>9} {'during ms':>9} {'ours ms':>8} "
          f"{'stock/ours':>10} {'catch-up s':>10}")
    first, ours = {}, {}
    for k in (int(k) for k in args.k.split(",")):
        out = subprocess.run([sys.executable, __file__, "--one", str(k), "--runs", str(args.runs)],
                             check=True, capture_output=True, text=True).stdout.split()
        files, stock_ms, first_ms, during_ms, ours_ms, catch_up = int(out[0]), *map(float, out[1:])
        first[k], ours[k] = first_ms, ours_ms
        print(f"{k:>8} {files:>7} {stock_ms:>9.2f} {first_ms:>9.2f} {during_ms:>9.2f} {ours_ms:>8.2f} "
              f"{stock_ms / ours_ms:>10.1f} {catch_up:>10.1f}", flush=True)
    if 0 in ours and len(ours) > 1:
        worst = max(ours)
        print(f"at K={worst}: first scrape {first[worst] / ours[0]:.2f}x our K=0 steady scrape "
              f"({first[worst] / first[0]:.2f}x our K=0 first scrape), steady scrape "
              f"{ours[worst] / ours[0]:.2f}x (goal: first within 2x)")


if __name__ == "__main__":
    main()
