"""imap_connections with the accounts that no IMAP process holds counted as `disconnected`.

IMAP processes report the accounts they hold, per state, in the livesum gauge (a dead process's
share disappears with it). Accounts that no process holds (none running, or a dead process's
accounts once their leases have expired) are counted from Redis: accounts without a lease key,
as AccountStore.count_by_state does. That count is global, not this host's: with IMAP processes
on several hosts, accounts held on another host have a lease and are not counted again here.
The contract counts them as `disconnected`.
"""

from __future__ import annotations

import logging

import redis
from prometheus_client.core import GaugeMetricFamily

from shared.metrics import definitions as metrics
from shared.stores.accounts import AccountStore

log = logging.getLogger(__name__)
NAME = "imap_connections"


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
    """Wraps the multiprocess collector; counts the unheld accounts in Redis at every scrape."""

    def __init__(self, inner, accounts: AccountStore):
        self.inner = inner
        self.accounts = accounts

    def collect(self):
        families = self.inner.collect()
        try:
            unheld = self.accounts.held(self.accounts.ids()).count(False)
        except redis.RedisError as exc:
            log.warning("unheld accounts not counted (Redis unavailable): %s", exc)
            metrics.safely(metrics.scrape_errors.labels(collector="imap_connections").inc)
            yield from families
            return
        yield from with_unheld(families, unheld)
