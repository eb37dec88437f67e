"""imap_connections with the accounts that no live IMAP process holds counted as `disconnected`.

IMAP processes report the accounts they hold, per state, in the livesum gauge (a dead process's
share disappears with it). Accounts that no process holds (none running, or a dead process's
accounts before their leases are taken over) are the difference between the accounts in Redis
and the sum of that gauge; the contract counts them as `disconnected`.
"""

from __future__ import annotations

import logging

import redis
from prometheus_client.core import GaugeMetricFamily

from shared.keys import Keys
from shared.redis_conn import TRANSIENT_ERRORS

log = logging.getLogger(__name__)
NAME = "imap_connections"


def with_unheld(families, total_accounts: int):
    """The families, imap_connections{status="disconnected"} raised by the unheld accounts."""
    seen = False
    for family in families:
        if family.name != NAME:
            yield family
            continue
        seen = True
        values = {s.labels.get("status", ""): s.value for s in family.samples}
        unheld = max(0, total_accounts - sum(values.values()))
        values["disconnected"] = values.get("disconnected", 0) + unheld
        adjusted = GaugeMetricFamily(NAME, family.documentation, labels=["status"])
        for status, value in values.items():
            adjusted.add_metric([status], value)
        yield adjusted
    if not seen:
        family = GaugeMetricFamily(NAME, "IMAP accounts per connection state", labels=["status"])
        family.add_metric(["disconnected"], total_accounts)
        yield family


class ImapConnectionsCollector:
    """Wraps the multiprocess collector; counts the accounts in Redis at every scrape."""

    def __init__(self, inner, conn: redis.Redis, keys: Keys):
        self.inner = inner
        self.conn = conn
        self.keys = keys

    def collect(self):
        families = self.inner.collect()
        try:
            total = self.conn.zcard(self.keys.accounts)
        except TRANSIENT_ERRORS as exc:
            log.warning("accounts not counted (Redis unavailable): %s", exc)
            yield from families
            return
        yield from with_unheld(families, total)
