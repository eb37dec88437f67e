"""Folding dead processes' metric files into one per-host archive, so scrapes stay fast and exact.

prometheus_client never removes the files of a dead process, and every scrape reads every file.
Here the counters, histograms and summaries of instances that are gone (clean exit, SIGKILL, OOM,
a pid since reused: see shared/metrics/directory.py) are added into `archive.json`, and their files are
deleted. Their live gauges are dropped, as prometheus_client's `mark_process_dead` would.

Why no scrape sees a sum dip or double:
- folding holds the directory lock exclusively; a scrape holds it shared while it reads the
  archive and the files, so it sees everything either before or after a fold, never half of one;
- the archive is replaced atomically (write, fsync, rename) and lists the instances folded into
  it; a scrape ignores files of listed instances, so a crash between writing the archive and
  deleting the files double-counts nothing, and the next fold deletes those files;
- an instance leaves the list once its files are gone, so the list stays small.
Several processes may try to fold at once: the exclusive lock lets one do it, the others skip.
"""

from __future__ import annotations

import json
import logging
import os
import struct
from collections import defaultdict
from dataclasses import dataclass, field

from prometheus_client.mmap_dict import MmapedDict

from . import directory as metricsdir

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
        path = os.path.join(directory, ARCHIVE_NAME)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            json.dump({"folded": sorted(self.folded), "values": self.values}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself survives a power loss
        finally:
            os.close(dir_fd)


@dataclass
class FoldReport:
    crashed: list = field(default_factory=list)  # types of processes that died without clean exit
    set_aside: list = field(default_factory=list)  # paths of corrupt files moved away
    folded: int = 0  # instances folded


def set_aside(directory: str, path: str) -> str:
    target_dir = os.path.join(directory, SET_ASIDE_DIR)
    os.makedirs(target_dir, exist_ok=True)
    target = os.path.join(target_dir, os.path.basename(path))
    os.replace(path, target)
    return target


def fold(directory: str) -> FoldReport:
    """Fold every dead instance; skip (empty report) when another process is folding."""
    report = FoldReport()
    with metricsdir.locked(directory, exclusive=True, blocking=False) as acquired:
        if not acquired:
            return report
        listing = metricsdir.listing(directory)
        gone = [i for i in listing.files if not metricsdir.is_alive(i)]
        if not gone and all(metricsdir.is_alive(i) for i in listing.markers) and _readable(directory):
            return report  # the common case at a scrape: nothing died since the last fold
        try:
            archive = Archive.load(directory)
        except CorruptFile as exc:
            log.error("metrics archive unreadable, set aside and started anew: %s", exc)
            report.set_aside.append(set_aside(directory, os.path.join(directory, ARCHIVE_NAME)))
            archive = Archive()
        files = listing.files
        remembered = len(archive.folded)
        archive.folded &= set(files)  # instances whose files are all gone need no memory
        dead = [i for i in gone if i not in archive.folded]
        for instance in dead:
            for kind, path in files[instance]:
                if kind not in KEPT:
                    continue
                try:
                    archive.add(kind, read_file(path))
                except CorruptFile as exc:
                    log.error("corrupt metric file set aside: %s", exc)
                    report.set_aside.append(set_aside(directory, path))
        archive.folded |= set(dead)
        if dead or len(archive.folded) != remembered:
            archive.save(directory)
        for instance in archive.folded:
            for _, path in files[instance]:
                metricsdir.remove(path)
        for instance in listing.markers:
            if metricsdir.is_alive(instance):
                continue
            marker = metricsdir.marker_path(directory, instance)
            process_type = _marker_type(marker)
            if metricsdir.remove(marker):  # the one remover counts it
                report.crashed.append(process_type)
        report.folded = len(dead)
    return report


def _readable(directory: str) -> bool:
    try:
        Archive.load_shared(directory)
        return True
    except CorruptFile:
        return False


def _marker_type(path: str) -> str:
    try:
        with open(path) as f:
            return json.load(f).get("type", "")
    except (OSError, ValueError, AttributeError):
        return ""
