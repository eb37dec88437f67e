"""imap_connections with the accounts that no IMAP process holds counted as `disconnected`, once.

IMAP processes report the accounts they hold, per state, in the livesum gauge (a dead process's
share disappears with it), so each host's /metrics shows its own processes' accounts. Accounts
that no process holds (none running, or a dead process's accounts once its lease has expired)
belong to no host: they are counted from Redis (`AccountStore.unheld`, a few commands whatever
the number of accounts) and added to `disconnected` by exactly one host, the *reporter*: the
web process holding the Redis key `unheld-reporter` (taken when free, kept by its scrapes, given
up after REPORTER_SECONDS without one). So `sum(imap_connections)` over hosts counts every
account once. The key outlives several scrape intervals, so the reporter does not change between
scrapes, which would let a sum over hosts see two hosts' reports at once. Every host also exposes
the global count as `imap_accounts_unheld` (aggregated with `max`, like the other global gauges).
"""

from __future__ import annotations

import logging
import os
import socket
import threading

import redis
from prometheus_client.core import GaugeMetricFamily

from shared.metrics import definitions as metrics
from shared.redis_trouble import RedisTrouble
from shared.stores.accounts import AccountStore

from .guarded import found_unreachable, redis_unreachable

log = logging.getLogger(__name__)
NAME = "imap_connections"
UNHELD = "imap_accounts_unheld"
REPORTER_SECONDS = 300

# KEYS: the reporter key. ARGV: this host's id, seconds. 1 if this host reports.
_REPORTER = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))
return 1
"""


def with_unheld(families, unheld: int):
    """The families, imap_connections{status="disconnected"} raised by the unheld accounts."""
    seen = False
    for family in families:
        if family.name != NAME:
            yield family
            continue
        seen = True
        values = {s.labels.get("status", ""): s.value for s in family.samples}
        values["disconnected"] = values.get("disconnected", 0) + unheld
        adjusted = GaugeMetricFamily(NAME, family.documentation, labels=["status"])
        for status, value in values.items():
            adjusted.add_metric([status], value)
        yield adjusted
    if not seen:
        family = GaugeMetricFamily(NAME, "IMAP accounts per connection state", labels=["status"])
        family.add_metric(["disconnected"], unheld)
        yield family


class ImapConnectionsCollector:
    """Wraps the multiprocess collector; the reporter host adds the unheld accounts.

    Its Redis part is guarded like the other collectors (guarded.py): when it cannot be read,
    the processes' own imap_connections are still served, without the unheld accounts.
    """

    def __init__(self, inner, accounts: AccountStore, directory: str):
        self.inner = inner
        self.accounts = accounts
        self.host_id = f"{socket.gethostname()}:{os.path.abspath(directory)}"  # one install on one host
        self.trouble = RedisTrouble("/metrics collector imap_connections", "web", log, loop=False)
        self._lock = threading.Lock()

    def collect(self):
        families = self.inner.collect()
        try:
            if redis_unreachable():
                raise redis.ConnectionError("Redis already found unreachable by this scrape")
            reporter = self.accounts.conn.register_script(_REPORTER)
            keys = [self.accounts.keys.unheld_reporter]
            reports = reporter(keys=keys, args=[self.host_id, REPORTER_SECONDS])
            unheld = self.accounts.unheld()
        except redis.RedisError as exc:
            found_unreachable(exc)
            with self._lock:
                self.trouble.failed(exc)
            metrics.safely(metrics.scrape_errors.labels(collector="imap_connections").inc)
            yield from with_unheld(families, 0)
            return
        with self._lock:
            self.trouble.succeeded()
        yield from with_unheld(families, unheld if reports else 0)
        # The same global count on every host (dashboards and alerts take the max, as for queue_size).
        family = GaugeMetricFamily(UNHELD, "IMAP accounts that no live IMAP process holds (global)")
        family.add_metric([], unheld)
        yield family
