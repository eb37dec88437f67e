"""Background loops whose death takes their process down.

A worker's background greenlet (lease renewal, maintenance, a listener) that ends with an
exception other than a Redis error (those are retried where they happen, shared.redis_trouble)
cannot go on: a bug or a state it was never meant to see. Left alone it would be a dead loop
behind a live heartbeat. LoopWatch notices, and the worker's run() raises LoopDied, so the
process exits non-zero (workers.runner) and its supervisor restarts it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import gevent

log = logging.getLogger(__name__)


class LoopDied(RuntimeError):
    """A background loop ended with an error: the process must stop and be restarted."""


class LoopWatch:
    def __init__(self, wake: Callable[[], None] | None = None):
        """wake(): called once a loop died, to interrupt the worker's main wait."""
        self.wake = wake
        self.died: tuple[str, BaseException] | None = None

    def spawn(self, name: str, function, *args) -> gevent.Greenlet:
        greenlet = gevent.spawn(function, *args)
        greenlet.link_exception(lambda g: self._died(name, g))
        return greenlet

    def _died(self, name: str, greenlet: gevent.Greenlet) -> None:
        if self.died is None:
            self.died = (name, greenlet.exception)
            log.error("the %s loop stopped with an error; stopping the process: %r", name, greenlet.exception)
        if self.wake is not None:
            self.wake()

    def check(self) -> None:
        """Raise LoopDied when a loop has died."""
        if self.died is not None:
            name, exc = self.died
            raise LoopDied(f"the {name} loop stopped: {type(exc).__name__}: {exc}") from exc
