"""The web process: REST API, /health and the aggregated /metrics. Never gevent-patched."""
