"""Code every mailpulse process uses.

- the plumbing, at the top: configuration (`config`), the Redis client and how its errors are
  told apart and ridden out (`redis_conn`, `redis_errors`, `redis_trouble`), key names (`keys`),
  the service secret, event emission and where an event goes (`events`, `event_names`,
  `webhook_target`), the `mailpulse` command (`cli`), and the exceptions grouped by what callers
  do (`errors`);
- `shared.runtime`: a process's start-up, lifecycle, heartbeats, app root and process table;
- `shared.mail`: message ids, messages to send, the submit queue, the mailbox channel;
- `shared.stores`: the Redis-backed stores of what users create;
- `shared.metrics`: metric definitions and their multiprocess storage.

`shared` never imports `web` or `workers`; stores and the metrics layer never import each other.
tests/unit/test_layering.py enforces both. Import order matters: see shared.runtime.bootstrap.
"""

__version__ = "0.1.0"
