"""Scrape time after K dead processes: mailpulse's folding collector next to the stock one.

    .venv/bin/python bench/scrape.py [--k 0,1000,10000] [--runs 15]

For each K, K real processes (forked children) record metrics the way workers do and exit without
cleaning up. Then, over the same directory in the same run:
- stock: prometheus_client's MultiProcessCollector + generate_latest, reading every file;
- ours: the first fold (timed once, reported apart: the one-off catch-up), then per scrape what
  the web process does: fold (nothing left to fold), FoldedMultiProcessCollector, our writer,
  timed once the directory has settled (2 s, as between two real scrapes).
Figures are medians over --runs scrapes; compare ratios, not absolute times (noisy machines).
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


def measure(k: int, runs: int, directory: str) -> tuple[int, float, float, float]:
    """(files, stock ms, ours ms, fold ms) for K dead processes, in this fresh process."""
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory  # before prometheus_client is imported
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    from shared.metrics import directory as metricsdir

    metricsdir.use_instance_ids()
    from shared.metrics import definitions as metrics
    from shared.metrics.archive import fold
    from web.collectors.multiprocess import FoldedMultiProcessCollector
    from web.exposition import render

    make_dead_processes(k, metrics)
    record_like_a_worker(metrics)  # this live process: the same series at every K
    files = len([n for n in os.listdir(directory) if n.endswith(".db")])

    def stock():
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)
        generate_latest(registry)

    stock_ms = median_ms(stock, max(3, runs // 3) if k >= 10000 else runs)
    started = time.perf_counter()
    fold(directory)
    fold_ms = (time.perf_counter() - started) * 1000
    # Real scrapes come every 15 s or so: by the next one the directory has settled and its
    # listing is reused (shared/metrics/directory.py). Wait that long here too.
    time.sleep(metricsdir.SETTLED_NS / 1e9 + 0.1)

    def ours():  # what each scrape of the web process does: fold, read, write
        fold(directory)
        render(FoldedMultiProcessCollector(directory).collect())

    ours_ms = median_ms(ours, runs)
    return files, stock_ms, ours_ms, fold_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--k", default="0,1000,10000", help="numbers of dead processes, comma-separated")
    parser.add_argument("--runs", type=int, default=15, help="scrapes per figure (median)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: one K, fresh process
    args = parser.parse_args()
    base = tempfile.mkdtemp(prefix="mailpulse-bench-scrape-")
    if args.one is not None:
        directory = os.path.join(base, "metrics")
        os.makedirs(directory)
        print(*measure(args.one, args.runs, directory))
        return
    print(f"{'K dead':>8} {'files':>7} {'stock ms':>9} {'ours ms':>8} {'stock/ours':>10} "
          f"{'fold once ms':>12}")
    ours = {}
    for k in (int(k) for k in args.k.split(",")):
        out = subprocess.run([sys.executable, __file__, "--one", str(k), "--runs", str(args.runs)],
                             check=True, capture_output=True, text=True).stdout.split()
        files, stock_ms, ours_ms, fold_ms = int(out[0]), *map(float, out[1:])
        ours[k] = ours_ms
        print(f"{k:>8} {files:>7} {stock_ms:>9.2f} {ours_ms:>8.2f} {stock_ms / ours_ms:>10.1f} "
              f"{fold_ms:>12.0f}", flush=True)
    if 0 in ours and len(ours) > 1:
        worst = max(ours)
        print(f"ours at K={worst} is {ours[worst] / ours[0]:.2f}x ours at K=0")


if __name__ == "__main__":
    main()
