"""Run a gevent worker process: bootstrap, start, heartbeat, stop cleanly on SIGTERM/SIGINT.

The caller has monkey-patched already, so threading.Event here is gevent's; signals go through
gevent.signal_handler, which runs the handler in the hub and never inside a metric update.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

import gevent

from shared import bootstrap
from shared.errors import ConfigError

# work(config, lifecycle, stop) runs in its own greenlet and returns once `stop` is set.
Work = Callable[[object, object, threading.Event], None]


def run(process_type: str, work: Work | None = None) -> None:
    try:
        config = bootstrap.prepare(process_type)
        from shared.lifecycle import Lifecycle  # imports prometheus_client: after prepare()

        lifecycle = Lifecycle(config, process_type)
        lifecycle.start()
    except ConfigError as exc:
        bootstrap.exit_on_config_error(exc)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, stop.set)
    greenlets = [gevent.spawn(lifecycle.heartbeat_loop, stop)]
    if work is not None:
        greenlets.append(gevent.spawn(work, config, lifecycle, stop))
    try:
        stop.wait()
        gevent.joinall(greenlets, timeout=30)
    finally:
        lifecycle.stop()
