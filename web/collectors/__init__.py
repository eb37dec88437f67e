"""Scrape-time collectors: metrics computed from Redis when Prometheus asks, never pushed."""
