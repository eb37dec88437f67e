"""The per-host archive of dead processes' metrics, and the reading of prometheus_client's files.

prometheus_client never removes the files of a dead process, and every scrape reads every file.
So the counters, histograms and summaries of instances that are gone (clean exit, SIGKILL, OOM,
a pid since reused: see shared/metrics/directory.py) are added into one `archive.json` and their
files deleted (shared/metrics/folding.py says when and how, safely). The archive lists the
instances folded into it; a scrape ignores files of listed instances, so a crash between saving
the archive and deleting the files double-counts nothing. Live gauges of the dead are dropped, as
prometheus_client's `mark_process_dead` would.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import struct
from collections import defaultdict
from dataclasses import dataclass, field

from prometheus_client.mmap_dict import MmapedDict

log = logging.getLogger(__name__)

ARCHIVE_NAME = "archive.json"
SET_ASIDE_DIR = "set-aside"
ADDED = {"counter", "histogram", "summary", "gauge_sum"}  # kinds whose values add up
KEPT = ADDED | {"gauge_max", "gauge_min", "gauge_mostrecent"}  # the rest (live, all) are dropped


class CorruptFile(Exception):
    """A metric file or the archive cannot be read: set it aside, never break a scrape."""


def read_file(path: str) -> list[tuple[str, float, float]]:
    """(key, value, timestamp) of every entry of one prometheus_client file."""
    try:
        with open(path, "rb") as f:
            header = f.read(4)
            size = os.fstat(f.fileno()).st_size
        used = struct.unpack("i", header)[0] if len(header) == 4 else 0
        if used == 0:  # a file being created: prometheus_client has not written its header yet
            return []
        if not 8 <= used <= size:  # the header must describe a file at least this long
            raise CorruptFile(f"{path}: header says {used} bytes used, the file has {size}")
        entries = MmapedDict.read_all_values_from_file(path)
        return [(key, value, timestamp) for key, value, timestamp, _ in entries]
    except (FileNotFoundError, CorruptFile):
        raise
    except (OSError, ValueError, RuntimeError, struct.error, UnicodeDecodeError, IndexError) as exc:
        raise CorruptFile(f"{path}: {exc}") from exc


_shared_cache: dict = {}


@dataclass
class Archive:
    folded: set = field(default_factory=set)  # instances whose values are in here
    values: dict = field(default_factory=lambda: defaultdict(dict))  # kind -> key -> [value, ts]

    def add(self, kind: str, entries) -> None:
        table = self.values[kind]
        for key, value, timestamp in entries:
            old = table.get(key)
            if old is None:
                table[key] = [value, timestamp]
            elif kind in ADDED:
                old[0] += value
            elif kind == "gauge_max":
                old[0] = max(old[0], value)
            elif kind == "gauge_min":
                old[0] = min(old[0], value)
            elif timestamp >= old[1]:  # gauge_mostrecent
                table[key] = [value, timestamp]

    @classmethod
    def load(cls, directory: str) -> Archive:
        path = os.path.join(directory, ARCHIVE_NAME)
        try:
            with open(path) as f:
                data = json.load(f)
            return cls(set(data["folded"]), defaultdict(dict, data["values"]))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CorruptFile(f"{path}: {exc}") from exc

    @classmethod
    def load_shared(cls, directory: str) -> Archive:
        """The archive for reading only, parsed again only when the file was replaced.

        Saves replace the file by rename, so (inode, mtime, size) names one version of it.
        """
        path = os.path.join(directory, ARCHIVE_NAME)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return cls()
        version = (path, st.st_ino, st.st_mtime_ns, st.st_size)
        cached = _shared_cache.get("archive")
        if cached is None or cached[0] != version:
            cached = _shared_cache["archive"] = (version, cls.load(directory))
        return cached[1]

    def save(self, directory: str) -> None:
        """Replace the archive atomically; OSError (a full disk) leaves the old one in place."""
        save_json(directory, ARCHIVE_NAME, {"folded": sorted(self.folded), "values": self.values})


def save_json(directory: str, name: str, data) -> None:
    """Write, fsync and rename into place, so readers see the old file or the new one, whole."""
    path = os.path.join(directory, name)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a power loss
    finally:
        os.close(dir_fd)


def set_aside(directory: str, path: str) -> str:
    target_dir = os.path.join(directory, SET_ASIDE_DIR)
    os.makedirs(target_dir, exist_ok=True)
    target = os.path.join(target_dir, os.path.basename(path))
    os.replace(path, target)
    return target
