"""What a mailpulse process needs to start, run and stop, apart from Redis and its stores.

The app root and its .env (`home`), the table of process types that the Procfile and the
supervisor exports are made from (`processes`, `export` and its templates), start-up
(`bootstrap`), the SIGTERM/heartbeat lifecycle of a worker (`lifecycle`, `heartbeats`) and the
embedded Redis of a single-host install (`embedded_redis`). Imports the plumbing of `shared`
(config, keys, errors, redis_*) and `shared.metrics`; never the stores.
"""
