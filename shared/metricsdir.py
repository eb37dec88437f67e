"""Lifecycle of the per-host multiprocess metrics directory.

Each process leaves a marker `proc_<pid>.json` (its type and kernel start time) next to its
metric files. A clean exit removes the process's live gauge files and its marker. A process that
died without that (SIGKILL, OOM) still has its marker; `sweep_dead` finds it, removes its live
gauges (so `livesum` gauges stop counting it) and reports it once, so that the caller can count
it in `thread_stops`. The kernel start time tells a dead pid from one the kernel gave again to a
new process. Markers are `.json`, so prometheus_client's collector never reads them.
"""

from __future__ import annotations

import glob
import json
import os

MARKER_GLOB = "proc_*.json"
LIVE_GAUGE_GLOB = "gauge_live*_{pid}.db"


def process_start_time(pid: int) -> int | None:
    """Kernel start time of pid in clock ticks since boot, or None when there is no live process.

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


def marker_path(directory: str, pid: int) -> str:
    return os.path.join(directory, f"proc_{pid}.json")


def register(directory: str, process_type: str, pid: int | None = None) -> None:
    """Write this process's marker (atomically: a reader never sees half a file)."""
    pid = pid or os.getpid()
    record = {"pid": pid, "type": process_type, "start_time": process_start_time(pid)}
    tmp = marker_path(directory, pid) + ".tmp"
    with open(tmp, "w") as f:
        json.dump(record, f)
    os.replace(tmp, marker_path(directory, pid))


def remove_live_gauges(directory: str, pid: int) -> None:
    for path in glob.glob(os.path.join(directory, LIVE_GAUGE_GLOB.format(pid=pid))):
        _remove(path)


def unregister(directory: str, pid: int | None = None) -> None:
    """On clean exit: live gauges go, then the marker (so a crash in between is still swept)."""
    pid = pid or os.getpid()
    remove_live_gauges(directory, pid)
    _remove(marker_path(directory, pid))


def sweep_dead(directory: str) -> list[dict]:
    """Clean up after processes that died without exiting cleanly; return their markers.

    Safe against concurrent sweeps: a marker is reported only by the sweep whose removal of it
    succeeded, so each dead process is reported exactly once.
    """
    dead = []
    for path in glob.glob(os.path.join(directory, MARKER_GLOB)):
        record = _read_marker(path)
        if record is None:
            continue
        if process_start_time(record["pid"]) == record.get("start_time") and record.get("start_time"):
            continue  # still the same live process
        remove_live_gauges(directory, record["pid"])
        if _remove(path):
            dead.append(record)
    return dead


def _read_marker(path: str) -> dict | None:
    try:
        with open(path) as f:
            record = json.load(f)
        int(record["pid"])
        return record
    except FileNotFoundError:
        return None  # removed by a concurrent sweep or a clean exit
    except (OSError, ValueError, KeyError, TypeError):
        _remove(path)  # unreadable marker: nothing to learn from it
        return None


def _remove(path: str) -> bool:
    try:
        os.remove(path)
        return True
    except FileNotFoundError:
        return False
