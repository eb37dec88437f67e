"""The per-host multiprocess metrics directory: who wrote which file, and who is still alive.

prometheus_client names a process's files by pid (`counter_<pid>.db`). A pid is reused by the
kernel, and a new process that finds an old file under its pid continues counting from the dead
process's values, stale live gauges included. So every mailpulse process names its files by an
*instance id*, `<pid>-<kernel start time>-<boot id>`, unique for the life of the host. An instance is alive
exactly when /proc shows that pid with that start time.

Each instance also leaves a marker `proc_<instance>.json` (its type). A clean exit removes its
live gauge files and its marker; a marker whose instance is gone means the process died without
a clean exit (SIGKILL, OOM), which is counted in `thread_stops` once by whoever folds it
(shared/metrics/archive.py). Markers are `.json`, so no metrics collector ever reads them.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import os
import re
import time

LOCK_NAME = ".lock"
# `<kind>_<instance>.db`, kind being counter, histogram, summary or gauge_<mode>.
_FILE = re.compile(r"^(counter|histogram|summary|gauge_[a-z]+)_([0-9]+(?:-[0-9]+-[0-9a-f]+)?)\.db$")


def process_start_time(pid: int) -> int | None:
    """Kernel start time of pid in clock ticks since boot, or None when no such live process.

    A zombie (dead, not yet reaped by its parent) counts as not live.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name is in parentheses and may itself hold spaces or parentheses.
    fields = stat[stat.rindex(b")") + 2:].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def _read_boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip().replace("-", "")[:8]
    except OSError:
        return "0"


BOOT_ID = _read_boot_id()  # start times count from boot: the same tick recurs after a reboot


def instance_id(pid: int | None = None) -> str:
    pid = pid or os.getpid()
    return f"{pid}-{process_start_time(pid)}-{BOOT_ID}"


def is_alive(instance: str) -> bool:
    """Whether the process instance that wrote files under this id is still running.

    A bare pid (files of a process not started through mailpulse) is judged by the pid alone.
    """
    pid, _, rest = instance.partition("-")
    start, _, boot = rest.partition("-")
    current = process_start_time(int(pid))
    if current is None:
        return False
    return not start or (str(current) == start and boot == BOOT_ID)


def parse_file_name(name: str) -> tuple[str, str] | None:
    """`counter_12-345.db` -> ("counter", "12-345"); None for files that are not metric files."""
    match = _FILE.match(name)
    return (match.group(1), match.group(2)) if match else None


def use_instance_ids() -> None:
    """Make prometheus_client name this process's files by instance id (before any metric exists).

    The id is recomputed only when the pid changes (after a fork), as prometheus_client expects.
    """
    from prometheus_client import values

    cache = {}

    def identifier() -> str:
        pid = os.getpid()
        if pid not in cache:
            cache.clear()
            cache[pid] = instance_id(pid)
        return cache[pid]

    values.ValueClass = values.MultiProcessValue(process_identifier=identifier)


def marker_path(directory: str, instance: str) -> str:
    return os.path.join(directory, f"proc_{instance}.json")


def register(directory: str, process_type: str) -> str:
    """Write this process's marker atomically; returns its instance id."""
    instance = instance_id()
    tmp = marker_path(directory, instance) + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"instance": instance, "type": process_type}, f)
    os.replace(tmp, marker_path(directory, instance))
    return instance


def unregister(directory: str, instance: str) -> None:
    """On clean exit: live gauges go, then the marker. Counter files stay until folded."""
    for path in glob.glob(os.path.join(directory, f"gauge_live*_{instance}.db")):
        remove(path)
    remove(marker_path(directory, instance))


_listings: dict[str, tuple[int, Listing]] = {}
SETTLED_NS = 2_000_000_000


def listing(directory: str) -> Listing:
    """The directory's listing, rescanned only when its mtime says something changed.

    A directory that once held many files stays slow to scan (ext4 never shrinks it), and scrapes
    scan it twice. A listing is reused only once the directory's mtime is SETTLED_NS old when
    scanned: a later change then always shows as a different mtime (the "racy git" rule).
    """
    mtime = os.stat(directory).st_mtime_ns
    cached = _listings.get(directory)
    if cached is not None and cached[0] == mtime:
        return cached[1]
    scanned = Listing(directory)
    if time.time_ns() - mtime > SETTLED_NS:
        _listings[directory] = (mtime, scanned)
    return scanned


class Listing:
    """One scan of the directory: metric files by instance, and the instances with a marker.

    Shared between threads through the cache: never modified after construction.
    """

    def __init__(self, directory: str):
        self.files: dict[str, list[tuple[str, str]]] = {}  # instance -> [(kind, path)]
        self.markers: list[str] = []  # instances
        for name in os.listdir(directory):
            parsed = parse_file_name(name)
            if parsed:
                self.files.setdefault(parsed[1], []).append((parsed[0], os.path.join(directory, name)))
            elif name.startswith("proc_") and name.endswith(".json"):
                self.markers.append(name[len("proc_"):-len(".json")])


@contextlib.contextmanager
def locked(directory: str, exclusive: bool, blocking: bool = True, name: str = LOCK_NAME):
    """A directory-wide lock: `.lock` is shared by scrapes while they read, exclusive for a fold
    that waits them out (shared/metrics/folding.py); `name` picks another lock file.

    Yields False (without the lock) when not blocking and the lock is busy.
    """
    fd = os.open(os.path.join(directory, name), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        flags = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | (0 if blocking else fcntl.LOCK_NB)
        try:
            fcntl.flock(fd, flags)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # closing releases the lock


def remove(path: str) -> bool:
    try:
        os.remove(path)
        return True
    except FileNotFoundError:
        return False
