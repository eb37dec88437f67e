"""One /metrics for every process on the host: sums, starts, and the live gauges of dead ones."""

import signal

import pytest

from shared.keys import Keys
from shared.stores.tokens import TokenStore
from support.scrape import parse, scrape_text, scrape_until, value
from support.servers import wait_for


@pytest.fixture
def token(conn):
    return TokenStore(conn, Keys()).issue(["metrics"])


def start_writer(spawn, env, count, gauge):
    proc = spawn("support.metric_writer", dict(env, PYTHONPATH="tests"), str(count), str(gauge))
    wait_for(lambda: "ready" in proc.output(), what="metric writer to start")
    return proc


def test_counters_sum_and_killed_process_gauges_go(web, spawn, env, token):
    writers = [start_writer(spawn, env, n, g) for n, g in ((3, 1), (5, 2), (7, 4))]
    samples = scrape_until(web.url, token, lambda s: value(s, "thread_starts") == 4, "the writers to show")
    assert value(samples, "imap_responses", response="OK", code="") == 15
    assert value(samples, "imap_connections", status="connected") == 7
    assert value(samples, "thread_starts") == 4  # web + three writers
    assert value(samples, "threads", type="imap", recent="yes") == 3

    writers[2].kill()
    samples = parse(scrape_text(web.url, token))
    assert value(samples, "imap_connections", status="connected") == 3  # its live gauge is gone
    assert value(samples, "imap_responses", response="OK", code="") == 15  # its counts stay
    # Its death is counted once, by the fold that finds it gone.
    samples = scrape_until(web.url, token, lambda s: value(s, "thread_stops") == 1, "the death counted")
    assert value(samples, "imap_responses", response="OK", code="") == 15
    samples = parse(scrape_text(web.url, token))
    assert value(samples, "thread_stops") == 1

    assert writers[1].stop(signal.SIGTERM) == 0  # clean exit counts its own stop
    samples = parse(scrape_text(web.url, token))
    assert value(samples, "imap_connections", status="connected") == 1
    assert value(samples, "thread_stops") == 2


def test_thread_starts_counts_every_start(web, spawn, env, token):
    for _ in range(3):
        start_writer(spawn, env, 1, 1).stop()
    start_writer(spawn, env, 1, 1)
    samples = scrape_until(web.url, token, lambda s: value(s, "thread_starts") == 5, "every start")
    assert value(samples, "thread_stops") == 3
    assert value(samples, "imap_responses", response="OK", code="") == 4


def test_real_workers_count_starts_and_heartbeats(web, spawn, env, token):
    imap = spawn("workers.imap", env)
    hooks = [spawn("workers.webhooks", env) for _ in range(2)]

    # One scrape reads the metric files before the heartbeats, so a worker starting in between
    # is seen live before its start is counted: wait for both.
    def all_live_and_counted():
        s = parse(scrape_text(web.url, token))
        return (value(s, "threads", type="imap", recent="yes") == 1
                and value(s, "threads", type="webhooks", recent="yes") == 2
                and value(s, "thread_starts") == 4)

    wait_for(all_live_and_counted, what="three workers to start and beat")
    assert imap.stop() == 0 and all(h.stop() == 0 for h in hooks)
    samples = parse(scrape_text(web.url, token))
    assert value(samples, "thread_stops") == 3
    assert value(samples, "threads", type="webhooks", recent="yes") == 0


def test_unresponsive_worker_is_reported(web, spawn, env, token):
    worker = spawn("workers.webhooks", env)
    wait_for(lambda: value(parse(scrape_text(web.url, token)), "threads", type="webhooks", recent="yes") == 1,
             what="worker to beat")
    worker.proc.send_signal(signal.SIGSTOP)  # alive but silent: its heartbeat goes overdue
    try:
        wait_for(lambda: value(parse(scrape_text(web.url, token)), "unresponsive_workers") == 1,
                 what="the overdue heartbeat to be reported")
    finally:
        worker.proc.send_signal(signal.SIGCONT)
    wait_for(lambda: value(parse(scrape_text(web.url, token)), "unresponsive_workers") == 0,
             what="the worker to recover")
