"""Logins spread over time: at most IMAP_LOGIN_RATE per second per process, in jittered slots.

When a process starts, takes over a dead process's accounts, or gets its accounts back after
fencing or a Redis outage, hundreds of sessions want to log in at the same moment. Providers
answer such a storm with throttling and false authentication failures. Every connection attempt
(the first one and every retry) waits for its slot here: slots are 1/rate apart, each moved by a
random part of that gap, so that processes started together do not log in in step either.
"""

from __future__ import annotations

import random
import time

import gevent


class LoginGate:
    def __init__(self, rate: float):
        self.gap = 1.0 / rate
        self.next_slot = 0.0

    def wait(self) -> None:
        """Return once this caller's slot has come (at once while logins are rare)."""
        now = time.monotonic()
        slot = max(now, self.next_slot)
        self.next_slot = slot + self.gap
        delay = slot - now + random.uniform(0, self.gap)
        if delay > 0:
            gevent.sleep(delay)
