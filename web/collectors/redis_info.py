"""redis_* gauges from INFO, INFO commandstats, SLOWLOG LEN and one timed PING.

Three collectors, one per command, so that an ACL forbidding one (or a Redis that is down)
leaves out only that part's families (web/collectors/guarded.py).
"""

from __future__ import annotations

import time

import redis
from prometheus_client.core import GaugeMetricFamily

# metric name -> (INFO field, help)
INFO_GAUGES = {
    "redis_uptime_in_seconds": ("uptime_in_seconds", "Redis uptime in seconds"),
    "redis_rejected_connections_total": ("rejected_connections", "Connections rejected by maxclients"),
    "redis_connected_clients": ("connected_clients", "Connected clients"),
    "redis_keyspace_hits_total": ("keyspace_hits", "Successful key lookups"),
    "redis_keyspace_misses_total": ("keyspace_misses", "Failed key lookups"),
    "redis_evicted_keys_total": ("evicted_keys", "Keys evicted by maxmemory"),
    "redis_memory_used_bytes": ("used_memory", "Memory used by Redis"),
    "redis_mem_fragmentation_ratio": ("mem_fragmentation_ratio", "Memory fragmentation ratio"),
    "redis_last_save_time": ("rdb_last_save_time", "Time of the last RDB save"),
    "redis_instantaneous_ops_per_sec": ("instantaneous_ops_per_sec", "Operations per second"),
}


def memory_limit(info: dict) -> int:
    """What Redis may use: `maxmemory`, or the machine's memory when maxmemory is 0 (unlimited)."""
    return info.get("maxmemory") or info.get("total_system_memory", 0)


class RedisLatencyCollector:
    """redis_latency: one PING round trip."""

    def __init__(self, conn: redis.Redis):
        self.conn = conn

    def collect(self):
        started = time.perf_counter_ns()
        self.conn.ping()
        yield GaugeMetricFamily("redis_latency", "PING round trip at scrape time in nanoseconds",
                                value=time.perf_counter_ns() - started)


class RedisSlowlogCollector:
    def __init__(self, conn: redis.Redis):
        self.conn = conn

    def collect(self):
        length = self.conn.slowlog_len()
        yield GaugeMetricFamily("redis_slowlog_length", "Entries in the slow log", value=length)


class RedisInfoCollector:
    """Everything INFO and INFO commandstats tell (one round trip)."""

    def __init__(self, conn: redis.Redis):
        self.conn = conn

    def collect(self):
        pipe = self.conn.pipeline(transaction=False)
        pipe.info()
        pipe.info("commandstats")
        info, commandstats = pipe.execute()

        for name, (field, doc) in INFO_GAUGES.items():
            if field in info:
                yield GaugeMetricFamily(name, doc, value=float(info[field]))
        maxclients = info.get("maxclients")
        if maxclients is not None:
            yield GaugeMetricFamily("redis_config_maxclients", "Configured maxclients", value=maxclients)
        yield GaugeMetricFamily("redis_memory_max_bytes",
                                "maxmemory, or the system memory when maxmemory is 0",
                                value=memory_limit(info))
        version = GaugeMetricFamily("redis_version", "Redis server version", labels=["version"])
        version.add_metric([str(info.get("redis_version", ""))], 1)
        yield version

        keys = GaugeMetricFamily("redis_key_count", "Keys per database", labels=["db"])
        for field, value in info.items():
            if field.startswith("db") and field[2:].isdigit() and isinstance(value, dict):
                keys.add_metric([field], value.get("keys", 0))
        yield keys

        yield from self._command_stats(commandstats)

    @staticmethod
    def _command_stats(commandstats: dict):
        runs = GaugeMetricFamily("redis_command_runs", "Calls per command", labels=["command"])
        fails = GaugeMetricFamily("redis_command_runs_fail", "Failed and rejected calls per command",
                                  labels=["command", "status"])
        total_calls = total_usec = 0
        for field, stats in commandstats.items():
            command = field.removeprefix("cmdstat_")
            calls = stats.get("calls", 0)
            total_calls += calls
            total_usec += stats.get("usec", 0)
            runs.add_metric([command], calls)
            for status, stat in (("failed", "failed_calls"), ("rejected", "rejected_calls")):
                if stats.get(stat):
                    fails.add_metric([command, status], stats[stat])
        yield GaugeMetricFamily("redis_commands_processed_total",
                                "Commands processed (sum over commandstats)", value=total_calls)
        yield GaugeMetricFamily("redis_commands_duration_seconds_total",
                                "Time spent in commands (sum over commandstats)", value=total_usec / 1e6)
        yield runs
        yield fails


REDIS_COLLECTORS = {"redis_info": RedisInfoCollector, "redis_slowlog": RedisSlowlogCollector,
                    "redis_latency": RedisLatencyCollector}
