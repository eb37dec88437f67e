"""Scrape-time collectors against a real Redis with known content."""

import time
from datetime import timedelta

import pytest
import redis
from rq import Queue, SimpleWorker
from rq.registry import FinishedJobRegistry, StartedJobRegistry
from rq.suspension import resume, suspend

from shared.keys import Keys
from web.collectors.queues import QueueCollector, queue_sizes
from web.collectors.redis_info import REDIS_COLLECTORS


def collected(collector) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in collector.collect() for s in family.samples}


def redis_gauges(conn) -> dict:
    values = {}
    for collector in REDIS_COLLECTORS.values():
        values.update(collected(collector(conn)))
    return values


@pytest.fixture
def notify(conn):
    return Queue("notify", connection=conn)


def test_queue_sizes_in_every_state(conn, notify):
    for _ in range(2):
        notify.enqueue("operator.add", 1, 2)
    notify.enqueue("operator.truediv", 1, 0)
    SimpleWorker([notify], connection=conn).work(burst=True)  # 2 completed, 1 failed
    for _ in range(3):
        notify.enqueue("operator.add", 1, 2)  # waiting
    notify.enqueue_in(timedelta(minutes=5), "operator.add", 1, 2)  # delayed
    now = time.time()
    conn.zadd(StartedJobRegistry("notify", connection=conn).key, {"a:1": now + 60, "b:1": now + 60})
    conn.zadd(StartedJobRegistry("notify", connection=conn).key, {"abandoned:1": now - 60})
    conn.zadd(FinishedJobRegistry("notify", connection=conn).key, {"expired": now - 60, "kept": -1})
    assert queue_sizes(conn, Keys())["notify"] == {
        "waiting": 3, "active": 2, "delayed": 1, "paused": 0, "failed": 1, "completed": 3}
    # Reading changed nothing: rq's own cleanup did not run.
    assert conn.zscore(FinishedJobRegistry("notify", connection=conn).key, "expired") is not None


def test_suspended_workers_show_waiting_jobs_as_paused(conn, notify):
    notify.enqueue("operator.add", 1, 2)
    suspend(conn)
    try:
        sizes = collected(QueueCollector(conn, Keys()))
        assert sizes[("queue_size", (("queue", "notify"), ("state", "paused")))] == 1
        assert sizes[("queue_size", (("queue", "notify"), ("state", "waiting")))] == 0
    finally:
        resume(conn)


def test_prefix_selects_the_install_queue(conn):
    Queue("a:notify", connection=conn).enqueue("operator.add", 1, 2)
    assert queue_sizes(conn, Keys("a:"))["notify"]["waiting"] == 1
    assert queue_sizes(conn, Keys())["notify"]["waiting"] == 0


def test_redis_gauges_from_known_content(conn, redis_url):
    conn.config_resetstat()  # the server is shared by the session: count from zero here
    db3 = redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + "/3")
    for i in range(5):
        db3.set(f"k{i}", i)
    conn.set("s", "text")
    with pytest.raises(redis.ResponseError):
        conn.hget("s", "field")  # a failed call (WRONGTYPE)
    conn.config_set("maxclients", 1234)
    conn.config_set("maxmemory", 100 * 1024 * 1024)
    try:
        values = redis_gauges(conn)
        info = conn.info()
    finally:
        conn.config_set("maxclients", 10000)
        conn.config_set("maxmemory", 0)
    assert values[("redis_key_count", (("db", "db3"),))] == 5
    assert values[("redis_key_count", (("db", "db0"),))] == 1
    assert values[("redis_config_maxclients", ())] == 1234
    assert values[("redis_memory_max_bytes", ())] == 100 * 1024 * 1024
    assert values[("redis_version", (("version", info["redis_version"]),))] == 1
    assert values[("redis_command_runs_fail", (("command", "hget"), ("status", "failed")))] == 1
    assert values[("redis_command_runs", (("command", "hget"),))] == 1
    assert values[("redis_latency", ())] > 0
    stats = conn.info("commandstats")
    # INFO ran before the SLOWLOG, PING, CONFIG SET and INFO calls of this test that follow it
    assert values[("redis_commands_processed_total", ())] >= sum(s["calls"] for s in stats.values()) - 10
    assert not any(name == "redis_command_runs_fail" and dict(labels)["command"] == "set"
                   for name, labels in values)  # zero counts are left out
    values = redis_gauges(conn)
    assert values[("redis_memory_max_bytes", ())] == info["total_system_memory"]
