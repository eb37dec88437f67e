"""A short-lived real process that records metrics and exits, for the folding tests.

Usage: python -m support.counting_process COUNT MODE   (PYTHONPATH=tests)
Adds COUNT to imap_responses{response="OK",code=""}, observes COUNT milliseconds in webhook_req,
sets imap_connections{status="connected"} to 1, prints "counted", then either exits cleanly
(MODE "exit": counts its own thread_stops and unregisters, as shared.runtime.lifecycle does) or waits to
be killed (MODE "wait").
"""

import sys
import time

from shared.runtime import bootstrap


def main() -> None:
    count, mode = int(sys.argv[1]), sys.argv[2]
    config = bootstrap.prepare("imap")
    from shared.metrics import definitions as metrics
    from shared.metrics import directory as metricsdir

    metrics.imap_responses.labels(response="OK", code="").inc(count)
    metrics.webhook_req.observe(count)
    metrics.imap_connections.labels(status="connected").set(1)
    print("counted", flush=True)
    if mode == "wait":
        time.sleep(600)
    metrics.thread_stops.inc()
    metricsdir.unregister(config.PROMETHEUS_MULTIPROC_DIR, metricsdir.instance_id())


if __name__ == "__main__":
    main()
