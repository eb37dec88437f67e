"""Run a gevent worker process: bootstrap, start, heartbeat, stop cleanly on SIGTERM/SIGINT.

The caller has monkey-patched already, so threading.Event here is gevent's; signals go through
gevent.signal_handler, which runs the handler in the hub and never inside a metric update.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable

import gevent

from shared.errors import ConfigError
from shared.runtime import bootstrap

log = logging.getLogger(__name__)

# work(config, lifecycle, stop) runs in its own greenlet and returns once `stop` is set.
Work = Callable[[object, object, threading.Event], None]


def run(process_type: str, work: Work | None = None, preload: Callable[[], None] | None = None) -> None:
    """preload(): imports that need the bootstrap done, run before any greenlet starts (so that
    no greenlet spends its first moments importing, which gevent's blocking monitor reports)."""
    try:
        config = bootstrap.prepare(process_type)
        if preload is not None:
            preload()
        from shared.runtime.lifecycle import Lifecycle  # imports prometheus_client: after prepare()

        lifecycle = Lifecycle(config, process_type)
        lifecycle.start()
    except ConfigError as exc:
        bootstrap.exit_on_config_error(exc)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, stop.set)
    failed = []

    def guarded_work():
        # A process whose work died must not live on as a heartbeat that does nothing: it stops,
        # and exits non-zero so that its supervisor (honcho, systemd) shows it.
        try:
            work(config, lifecycle, stop)
        except Exception as exc:
            if stop.is_set():
                log.warning("%s work ended with an error while stopping: %s", process_type, exc)
            else:
                log.exception("%s work failed; stopping the process", process_type)
                failed.append(True)
        finally:
            stop.set()

    greenlets = [gevent.spawn(lifecycle.heartbeat_loop, stop)]
    if work is not None:
        greenlets.append(gevent.spawn(guarded_work))
    try:
        stop.wait()
        gevent.joinall(greenlets, timeout=30)
    finally:
        lifecycle.stop()
    if failed:
        raise SystemExit(1)
