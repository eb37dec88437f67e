"""Code every mailpulse process uses, in three layers.

- the process plumbing, at the top: configuration (`config`), start-up order (`bootstrap`), the
  Redis client (`redis_conn`) and key names (`keys`), start/heartbeat/stop (`lifecycle`,
  `heartbeats`), the service secret, event emission (`events`, `event_names`), the `mailpulse`
  command (`cli`), and the exceptions grouped by what callers do (`errors`);
- `shared.stores`: the Redis-backed stores of what users create;
- `shared.metrics`: metric definitions and their multiprocess storage.

`shared` never imports `web` or `workers`; stores and the metrics layer never import each other.
tests/unit/test_layering.py enforces both. Import order matters: see shared.bootstrap.
"""

__version__ = "0.1.0"
