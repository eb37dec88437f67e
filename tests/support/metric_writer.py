"""A real process that records metrics the way a worker does, for aggregation tests.

Usage: python -m support.metric_writer COUNT GAUGE  (with PYTHONPATH=tests)
Counts `imap_responses{response="OK",code=""}` COUNT times, sets
imap_connections{status="connected"} to GAUGE, prints "ready", then waits for SIGTERM.
"""

import signal
import sys
import threading
import time

from shared.runtime import bootstrap


def main() -> None:
    count, gauge = int(sys.argv[1]), float(sys.argv[2])
    config = bootstrap.prepare("imap")
    from shared.metrics import definitions as metrics
    from shared.runtime.lifecycle import Lifecycle

    lifecycle = Lifecycle(config, "imap")
    lifecycle.start()
    for _ in range(count):
        metrics.imap_responses.labels(response="OK", code="").inc()
    metrics.imap_connections.labels(status="connected").set(gauge)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))  # a flag: no lock in a handler
    stop = threading.Event()
    threading.Thread(target=lifecycle.heartbeat_loop, args=(stop,), daemon=True).start()
    print("ready", flush=True)
    while not stopping:
        time.sleep(0.1)
    stop.set()
    lifecycle.stop()


if __name__ == "__main__":
    main()
