"""Read /metrics as a test would: parsed into {(name, labels): value}."""

from __future__ import annotations

import re

import requests

# Every metric of DESIGN section 3 with its exposed type: the contract the tests hold /metrics to.
CONTRACT = {
    "thread_starts": "counter", "thread_stops": "counter", "api_call": "counter",
    "imap_connections": "gauge", "imap_responses": "counter", "imap_bytes_sent": "counter",
    "imap_bytes_received": "counter", "webhooks": "counter", "events": "counter",
    "webhook_req": "histogram", "queue_size": "gauge", "queues_processed": "counter",
    "redis_uptime_in_seconds": "gauge", "redis_rejected_connections_total": "gauge",
    "redis_config_maxclients": "gauge", "redis_connected_clients": "gauge",
    "redis_slowlog_length": "gauge", "redis_commands_duration_seconds_total": "gauge",
    "redis_commands_processed_total": "gauge", "redis_keyspace_hits_total": "gauge",
    "redis_keyspace_misses_total": "gauge", "redis_evicted_keys_total": "gauge",
    "redis_memory_used_bytes": "gauge", "redis_memory_max_bytes": "gauge",
    "redis_mem_fragmentation_ratio": "gauge", "redis_last_save_time": "gauge",
    "redis_instantaneous_ops_per_sec": "gauge", "redis_key_count": "gauge",
    "redis_command_runs": "gauge", "redis_command_runs_fail": "gauge", "redis_version": "gauge",
    "redis_latency": "gauge", "threads": "gauge", "unresponsive_workers": "gauge",
}

# A sample line of the text format, read literally: names exactly as written on the wire.
_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def scrape_text(base_url: str, token: str) -> str:
    response = requests.get(base_url + "/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 200, response.text
    return response.text


def parse(text: str) -> dict:
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, labels, number = match.groups()
        key = (name, tuple(sorted(_LABEL.findall(labels or ""))))
        assert key not in samples, f"duplicate sample {line!r}"
        samples[key] = float(number)
    return samples


def types(text: str) -> dict:
    """{metric name: type} from the TYPE lines, exactly as written."""
    found = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, mtype = line.split(" ", 3)
            found[name] = mtype
    return found


def value(samples: dict, name: str, **labels) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def scrape_until(base_url: str, token: str, check, what: str = "the metrics", timeout: float = 30.0) -> dict:
    """Scrape until check(samples) holds; returns those samples.

    A process shows in /metrics once the web process's folder has listed it (a pass every half
    second), and one that lived less than that once it is folded: tests wait for both.
    """
    from .servers import wait_for

    found = {}

    def ready():
        found["samples"] = parse(scrape_text(base_url, token))
        return check(found["samples"])

    wait_for(ready, timeout=timeout, interval=0.1, what=what)
    return found["samples"]
