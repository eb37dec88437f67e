"""Dead processes' metric files are folded in the background: sums stay exact and monotonic,
files stay bounded, and no scrape waits for a fold (the web process's folder child does it)."""

import glob
import json
import os
import random
import subprocess
import threading

import pytest

from shared.keys import Keys
from shared.metrics import directory as metricsdir
from shared.metrics.archive import ARCHIVE_NAME, SET_ASIDE_DIR, Archive, read_file
from shared.metrics.folding import FOLD_LOCK
from shared.stores.tokens import TokenStore
from support.scrape import parse, scrape_text, scrape_until, value
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


def unfolded_dead(directory) -> list[str]:
    """Instances of dead processes whose files are there and not yet in the archive."""
    folded = Archive.load(directory).folded
    return [i for i in files_by_instance(directory) if not metricsdir.is_alive(i) and i not in folded]


def responses(samples):
    return value(samples, "imap_responses", response="OK", code="") or 0


def metric_files(directory):
    return glob.glob(os.path.join(directory, "*.db"))


def test_many_dying_processes_stay_exact_and_bounded(web, env, tmp_path, token):
    writers = Writers(env, tmp_path)
    directory = env["PROMETHEUS_MULTIPROC_DIR"]
    seen, problems, stop = [], [], threading.Event()

    def scrape_continuously():
        # Never less than an earlier scrape, never more than was counted. (A process that lived
        # less than one fold pass shows once folded, so the sum may lag what was counted.)
        last = 0
        while not stop.is_set():
            current = responses(parse(scrape_text(web.url, token)))
            high = writers.started_total
            if current < last or current > high:
                problems.append((last, current, high))
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
    assert problems == []
    assert len(seen) > 20  # the scrapes really ran in between
    stops = writers.launched - len(writers.waiting)
    samples = scrape_until(web.url, token, lambda s: responses(s) == writers.done_total
                           and value(s, "thread_stops") == stops, "every count folded")
    assert value(samples, "webhook_req_count") == 200
    assert value(samples, "webhook_req_sum") == writers.done_total
    assert value(samples, "imap_connections", status="connected") == len(writers.waiting)
    # Clean exits counted their own stop; the killed ones were counted once by a fold.
    assert killed > 0
    # Bounded: the live processes' files (web, its folder, waiting writers) plus the archive.
    live = {metricsdir.instance_id(p.pid) for p in writers.waiting} | {metricsdir.instance_id(web.pid)}
    folder = {i for i in files_by_instance(directory) if metricsdir.is_alive(i)} - live
    assert len(folder) <= 1  # the folder child of the web process
    wait_for(lambda: set(files_by_instance(directory)) <= live | folder, what="the dead's files deleted")
    assert len(metric_files(directory)) <= 4 * len(live | folder)
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
    samples = scrape_until(web.url, token, lambda s: value(s, "thread_stops") == 1, "the death counted")
    assert responses(samples) == 5
    assert value(samples, "imap_connections", status="connected") == 0  # its live gauge is gone
    wait_for(lambda: not glob.glob(os.path.join(directory, f"*{recycled}*")), what="its files folded")


def test_crash_between_archive_and_deletion_counts_once(web, env, tmp_path, token):
    """A fold that wrote the archive but died before deleting the files must not double."""
    directory = env["PROMETHEUS_MULTIPROC_DIR"]
    writers = Writers(env, tmp_path)
    writers.run(7, "exit")
    scrape_until(web.url, token, lambda s: responses(s) == 7, "the 7 counted")
    # A scrape also counts a dead process's files before their fold: wait for the fold itself.
    wait_for(lambda: not unfolded_dead(directory), what="the 7 folded into the archive")
    # Do by hand what a fold does up to its crash point: archive written, files still there
    # (holding the fold lock, so that the folder waits meanwhile).
    with metricsdir.locked(directory, exclusive=True, name=FOLD_LOCK):
        writers.run(4, "exit")
        (instance,) = unfolded_dead(directory)
        archive = Archive.load(directory)
        for kind, path in files_by_instance(directory)[instance]:
            if kind == "counter":
                archive.add(kind, read_file(path))
        archive.folded.add(instance)
        archive.save(directory)
        assert responses(parse(scrape_text(web.url, token))) == 11
    # The next pass finishes the job: the files go, and nothing counts twice.
    wait_for(lambda: instance not in files_by_instance(directory), what="the next fold to delete them")
    assert responses(parse(scrape_text(web.url, token))) == 11


def test_corrupt_file_is_set_aside_and_counted(web, env, tmp_path, token):
    directory = env["PROMETHEUS_MULTIPROC_DIR"]
    writers = Writers(env, tmp_path)
    with metricsdir.locked(directory, exclusive=True, name=FOLD_LOCK):  # no fold meanwhile
        first = writers.run(3, "exit")
        writers.run(4, "exit")
        dead = [i for i in files_by_instance(directory) if i.startswith(f"{first.pid}-")]
        counter = os.path.join(directory, f"counter_{dead[0]}.db")
        with open(counter, "r+b") as f:  # truncated inside its first entry
            f.truncate(20)
        garbage = os.path.join(directory, f"histogram_999999-1-{metricsdir.BOOT_ID}.db")
        with open(garbage, "wb") as f:
            f.write(b"\xff" * 64)
    samples = scrape_until(web.url, token, lambda s: value(s, "mailpulse_metric_files_corrupt_total") == 2,
                           "both corrupt files counted")
    assert responses(samples) == 4  # the truncated file's 3 are lost, the rest is intact
    for path in (garbage, counter):
        wait_for(lambda p=path: os.path.exists(os.path.join(directory, SET_ASIDE_DIR, os.path.basename(p))),
                 what="the corrupt file set aside")
        assert not os.path.exists(path)
    assert "corrupt metric file" in web.output()
    again = parse(scrape_text(web.url, token))
    assert value(again, "mailpulse_metric_files_corrupt_total") == 2  # each file counted once


def test_corrupt_archive_does_not_break_metrics(web, env, token):
    directory = env["PROMETHEUS_MULTIPROC_DIR"]
    with open(os.path.join(directory, ARCHIVE_NAME), "w") as f:
        f.write("{not json")
    scrape_until(web.url, token, lambda s: value(s, "thread_starts") == 1, "the web's own start")
    wait_for(lambda: os.path.exists(os.path.join(directory, SET_ASIDE_DIR, ARCHIVE_NAME)),
             what="the archive set aside")
    scrape_until(web.url, token, lambda s: value(s, "mailpulse_metric_files_corrupt_total") == 1,
                 "the corrupt archive counted (in the new archive)")


def test_whole_stack_restart_keeps_counts(spawn, env, tmp_path, token):
    writers = Writers(env, tmp_path)

    web = start_web(spawn, env)
    worker = spawn("workers.imap", env)
    wait_for(lambda: "started" in worker.output(), what="the worker to start")
    writers.run(6, "exit")
    scrape_until(web.url, token, lambda s: responses(s) == 6 and value(s, "thread_starts") == 2)
    assert worker.stop() == 0 and web.stop() == 0
    web = start_web(spawn, env)
    worker = spawn("workers.imap", env)
    wait_for(lambda: "started" in worker.output(), what="the worker to start")
    writers.run(2, "exit")
    after = scrape_until(web.url, token, lambda s: responses(s) == 8 and value(s, "thread_stops") == 4)
    assert value(after, "thread_starts") == 4  # web and imap, twice
    assert value(after, "thread_stops") == 4  # web and imap once, and the two counting processes
    with open(os.path.join(env["PROMETHEUS_MULTIPROC_DIR"], ARCHIVE_NAME)) as f:
        folded = set(json.load(f)["folded"])
    assert not folded & set(files_by_instance(env["PROMETHEUS_MULTIPROC_DIR"]))  # nothing folded is left



def test_a_process_that_lived_through_a_pass_is_exact_at_once(web, env, tmp_path, token):
    writers = Writers(env, tmp_path)
    proc = writers.run(6, "wait")
    scrape_until(web.url, token, lambda s: responses(s) == 6, "the writer to show")
    proc.kill()
    samples = parse(scrape_text(web.url, token))  # before any fold: read from its files
    assert responses(samples) == 6
    assert value(samples, "imap_connections", status="connected") == 0  # dead: no live gauge


def test_scrapes_never_wait_for_a_fold(web, env, tmp_path, token):
    """While a fold holds its lock (a long catch-up), scrapes answer, and no sum dips."""
    directory = env["PROMETHEUS_MULTIPROC_DIR"]
    writers = Writers(env, tmp_path)
    writers.run(2, "exit")
    scrape_until(web.url, token, lambda s: responses(s) == 2, "the first writer folded")
    with metricsdir.locked(directory, exclusive=True, name=FOLD_LOCK):
        for _ in range(5):
            writers.run(1, "exit")
        for _ in range(5):
            assert responses(parse(scrape_text(web.url, token))) >= 2
    scrape_until(web.url, token, lambda s: responses(s) == 7, "the rest folded after the lock")


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB filesystem of its own (tmpfs; the tests run as root, as .ci/run does)."""
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_postpones_folding_and_never_fails_the_scrape(spawn, env, tmp_path, token, small_disk):
    env = dict(env, PROMETHEUS_MULTIPROC_DIR=str(small_disk / "metrics"))
    web = start_web(spawn, env)
    writers = Writers(env, tmp_path)
    proc = writers.run(3, "wait")
    scrape_until(web.url, token, lambda s: responses(s) == 3, "the writer to show")
    filler = small_disk / "filler"
    for block in ("64k", "4k"):  # to ENOSPC, to the last page (tmpfs allocates pages)
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}.{block}", f"bs={block}"], capture_output=True)
    proc.kill()
    wait_for(lambda: "folding postponed" in web.output(), what="the folder to meet the full disk")
    for _ in range(3):
        samples = parse(scrape_text(web.url, token))
        assert responses(samples) == 3  # read from the dead process's files meanwhile
    for block in ("64k", "4k"):
        (small_disk / f"filler.{block}").unlink()
    scrape_until(web.url, token, lambda s: value(s, "thread_stops") == 1 and responses(s) == 3,
                 "folding to resume once there is room")
    directory = env["PROMETHEUS_MULTIPROC_DIR"]
    wait_for(lambda: not [i for i in files_by_instance(directory) if i.startswith(f"{proc.pid}-")],
             what="the dead process's files folded")
