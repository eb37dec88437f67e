"""Dead processes' metric files are folded: sums stay exact and monotonic, files stay bounded."""

import glob
import json
import os
import random
import threading

import pytest

from shared.keys import Keys
from shared.metrics import directory as metricsdir
from shared.metrics.archive import ARCHIVE_NAME, SET_ASIDE_DIR, Archive, read_file
from shared.stores.tokens import TokenStore
from support.scrape import parse, scrape_text, value
from support.servers import Process, start_web, wait_for


@pytest.fixture
def token(conn):
    return TokenStore(conn, Keys()).issue(["metrics"])


class Writers:
    """Launches counting processes; knows how much they have counted and may have counted."""

    def __init__(self, env, tmp_path):
        self.env = dict(env, PYTHONPATH="tests")
        self.tmp_path = tmp_path
        self.started_total = 0  # counted, or about to be, by every process launched
        self.done_total = 0  # surely counted: the process said so
        self.waiting = []
        self.launched = 0

    def run(self, count: int, mode: str) -> Process:
        self.started_total += count
        self.launched += 1
        proc = Process("support.counting_process", self.env,
                       self.tmp_path / f"count-{self.launched}.log", (str(count), mode))
        if mode == "exit":
            assert proc.proc.wait(60) == 0, proc.output()
            proc.stop()
        else:
            wait_for(lambda: "counted" in proc.output(), what="the process to count")
            self.waiting.append(proc)
        self.done_total += count
        return proc


def files_by_instance(directory):
    return metricsdir.listing(directory).files


def responses(samples):
    return value(samples, "imap_responses", response="OK", code="") or 0


def metric_files(directory):
    return glob.glob(os.path.join(directory, "*.db"))


def test_many_dying_processes_stay_exact_and_bounded(web, env, tmp_path, token):
    writers = Writers(env, tmp_path)
    directory = env["PROMETHEUS_MULTIPROC_DIR"]
    seen, problems, stop = [], [], threading.Event()

    def scrape_continuously():
        last = 0
        while not stop.is_set():
            low = writers.done_total
            current = responses(parse(scrape_text(web.url, token)))
            high = writers.started_total
            if current < last or current < low or current > high:
                problems.append((last, low, current, high))
            last = current
            seen.append(current)

    scrapers = [threading.Thread(target=scrape_continuously) for _ in range(2)]
    for thread in scrapers:
        thread.start()
    rng = random.Random(7)
    try:
        for i in range(200):
            writers.run(rng.randint(1, 9), "wait" if i % 4 == 0 else "exit")
            if len(writers.waiting) > 3:  # SIGKILL the oldest: it dies without a clean exit
                writers.waiting.pop(0).kill()
    finally:
        stop.set()
        for thread in scrapers:
            thread.join()
    killed = writers.launched // 4 - len(writers.waiting)
    samples = parse(scrape_text(web.url, token))
    assert problems == []
    assert len(seen) > 20  # the scrapes really ran in between
    assert responses(samples) == writers.done_total
    assert value(samples, "webhook_req_count") == 200
    assert value(samples, "webhook_req_sum") == writers.done_total
    assert value(samples, "imap_connections", status="connected") == len(writers.waiting)
    # Clean exits counted their own stop; the killed ones were counted once by a fold.
    assert value(samples, "thread_stops") == writers.launched - len(writers.waiting)
    assert killed > 0
    # Bounded: the live processes' files (web + waiting writers) plus the archive.
    live = {metricsdir.instance_id(p.pid) for p in writers.waiting} | {metricsdir.instance_id(web.pid)}
    assert set(files_by_instance(directory)) <= live
    assert len(metric_files(directory)) <= 4 * len(live)
    for proc in writers.waiting:
        proc.kill()


def test_recycled_pid_is_dead_and_folded(web, env, tmp_path, token):
    """Files left by pid P, which the kernel has since given to another (live) process."""
    writers = Writers(env, tmp_path)
    directory = env["PROMETHEUS_MULTIPROC_DIR"]
    proc = writers.run(5, "wait")
    proc.kill()
    # The killed process's files carry its instance id; give them the pid of a live process
    # (this test's own), keeping the dead start time: exactly what pid reuse leaves behind.
    dead = [i for i in files_by_instance(directory) if i.startswith(f"{proc.pid}-")]
    assert len(dead) == 1
    instance = dead[0]
    recycled = instance.replace(f"{proc.pid}-", f"{os.getpid()}-", 1)
    for path in glob.glob(os.path.join(directory, f"*_{instance}.*")):
        os.rename(path, path.replace(instance, recycled))
    assert metricsdir.is_alive(recycled) is False
    samples = parse(scrape_text(web.url, token))
    assert responses(samples) == 5
    assert value(samples, "imap_connections", status="connected") == 0  # its live gauge is gone
    assert value(samples, "thread_stops") == 1
    assert not glob.glob(os.path.join(directory, f"*{recycled}*"))


def test_crash_between_archive_and_deletion_counts_once(web, env, tmp_path, token):
    """A fold that wrote the archive but died before deleting the files must not double."""
    directory = env["PROMETHEUS_MULTIPROC_DIR"]
    writers = Writers(env, tmp_path)
    writers.run(7, "exit")
    assert responses(parse(scrape_text(web.url, token))) == 7  # folded: archive holds the 7
    writers.run(4, "exit")
    (instance,) = [i for i in files_by_instance(directory) if not metricsdir.is_alive(i)]
    # Do by hand what a fold does up to its crash point: archive written, files still there.
    with metricsdir.locked(directory, exclusive=True):
        archive = Archive.load(directory)
        for kind, path in files_by_instance(directory)[instance]:
            if kind == "counter":
                archive.add(kind, read_file(path))
        archive.folded.add(instance)
        archive.save(directory)
    assert responses(parse(scrape_text(web.url, token))) == 11
    assert instance not in files_by_instance(directory)  # the next fold finished the job


def test_corrupt_file_is_set_aside_and_counted(web, env, tmp_path, token):
    directory = env["PROMETHEUS_MULTIPROC_DIR"]
    writers = Writers(env, tmp_path)
    writers.run(3, "exit")
    writers.run(4, "exit")
    dead = sorted(i for i in files_by_instance(directory) if not metricsdir.is_alive(i))
    counter = os.path.join(directory, f"counter_{dead[0]}.db")
    with open(counter, "r+b") as f:  # truncated inside its first entry
        f.truncate(20)
    garbage = os.path.join(directory, f"histogram_999999-1-{metricsdir.BOOT_ID}.db")
    with open(garbage, "wb") as f:
        f.write(b"\xff" * 64)
    samples = parse(scrape_text(web.url, token))
    assert responses(samples) == 4  # the truncated file's 3 are lost, the rest is intact
    assert value(samples, "mailpulse_metric_files_corrupt_total") == 2
    for path in (garbage, counter):
        assert os.path.exists(os.path.join(directory, SET_ASIDE_DIR, os.path.basename(path)))
        assert not os.path.exists(path)
    assert "corrupt metric file" in web.output()
    again = parse(scrape_text(web.url, token))
    assert value(again, "mailpulse_metric_files_corrupt_total") == 2  # each file counted once


def test_corrupt_archive_does_not_break_metrics(web, env, token):
    directory = env["PROMETHEUS_MULTIPROC_DIR"]
    with open(os.path.join(directory, ARCHIVE_NAME), "w") as f:
        f.write("{not json")
    samples = parse(scrape_text(web.url, token))
    assert value(samples, "thread_starts") == 1
    assert os.path.exists(os.path.join(directory, SET_ASIDE_DIR, ARCHIVE_NAME))


def test_whole_stack_restart_keeps_counts(spawn, env, tmp_path, token):
    writers = Writers(env, tmp_path)

    web = start_web(spawn, env)
    worker = spawn("workers.imap", env)
    wait_for(lambda: "started" in worker.output(), what="the worker to start")
    writers.run(6, "exit")
    before = parse(scrape_text(web.url, token))
    assert responses(before) == 6 and value(before, "thread_starts") == 2
    assert worker.stop() == 0 and web.stop() == 0
    web = start_web(spawn, env)
    worker = spawn("workers.imap", env)
    wait_for(lambda: "started" in worker.output(), what="the worker to start")
    writers.run(2, "exit")
    after = parse(scrape_text(web.url, token))
    assert responses(after) == 8
    assert value(after, "thread_starts") == 4  # web and imap, twice
    assert value(after, "thread_stops") == 4  # web and imap once, and the two counting processes
    with open(os.path.join(env["PROMETHEUS_MULTIPROC_DIR"], ARCHIVE_NAME)) as f:
        folded = set(json.load(f)["folded"])
    assert folded and not folded & set(files_by_instance(env["PROMETHEUS_MULTIPROC_DIR"]))

