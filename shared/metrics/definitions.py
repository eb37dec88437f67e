"""Every metric that a worker process records, defined once (DESIGN section 3 is the contract).

Metrics computed at scrape time (queue_size, redis_*, threads, unresponsive_workers) are not here:
the web process builds them from Redis in web/collectors/. Counters are exposed without the
`_total` suffix that prometheus_client adds (web/exposition.py), as the contract names them.

A metric hook must never break the work it measures: `safely` logs and swallows its errors.
"""

from __future__ import annotations

import logging
import os

if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # pragma: no cover - a programming error
    raise RuntimeError("call shared.runtime.bootstrap.prepare() before importing shared.metrics.definitions")

from prometheus_client import Counter, Gauge, Histogram  # noqa: E402

log = logging.getLogger(__name__)

IMAP_STATES = ("init", "connecting", "connected", "syncing", "authenticationError",
               "connectError", "disconnected", "unset")
QUEUE_STATES = ("waiting", "active", "delayed", "paused", "failed", "completed")
PROCESS_TYPES = ("web", "imap", "webhooks", "submit")
WEBHOOK_REQ_BUCKETS = (100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000, 60000)

thread_starts = Counter("thread_starts", "Worker processes started")
thread_stops = Counter("thread_stops", "Worker processes stopped (or found dead)")
api_call = Counter("api_call", "API calls", ["method", "statusCode", "route"])
imap_connections = Gauge("imap_connections", "IMAP accounts per connection state", ["status"],
                         multiprocess_mode="livesum")
imap_responses = Counter("imap_responses", "Tagged IMAP responses", ["response", "code"])
imap_bytes_sent = Counter("imap_bytes_sent", "Bytes sent to IMAP servers")
imap_bytes_received = Counter("imap_bytes_received", "Bytes received from IMAP servers")
webhooks = Counter("webhooks", "Webhook delivery attempts", ["status", "event"])
events = Counter("events", "Events emitted", ["event"])
webhook_req = Histogram("webhook_req", "Duration of webhook requests in milliseconds",
                        buckets=WEBHOOK_REQ_BUCKETS)
queues_processed = Counter("queues_processed", "Queue job attempts", ["queue", "status"])

# Our own, beyond the contract.
metric_files_corrupt = Counter("mailpulse_metric_files_corrupt",
                               "Corrupt multiprocess metric files found (skipped, set aside once dead)")
# process: a process type; kind: one of shared.redis_errors.KINDS. Both closed sets.
redis_errors = Counter("mailpulse_redis_errors", "Redis errors met, by process type and kind",
                       ["process", "kind"])
redis_failing = Gauge("mailpulse_redis_failing", "1 while some loop of a process fails with this kind",
                      ["process", "kind"], multiprocess_mode="livemax")
# op: one of shared.mail.mailbox_channel.OPERATIONS (a closed set): mailbox API calls an IMAP process served.
imap_api_requests = Counter("mailpulse_imap_api_requests",
                            "Mailbox API requests an IMAP process served on command connections", ["op"])
# collector: one of web/metrics_view.COLLECTORS.
scrape_errors = Counter("mailpulse_scrape_errors", "Scrape-time collectors that could not read their part",
                        ["collector"])


def safely(record, *args, **kwargs) -> None:
    """Call a metric update; log and ignore any error so that metrics never break work."""
    try:
        record(*args, **kwargs)
    except Exception:  # noqa: BLE001 - by design, see module docstring
        log.exception("metric update failed")
