"""Folding dead processes into the archive, off the scrape path, with no dip and no double count.

Who does what:
- a folder (web/folding.py, a child process of the web process) runs `fold_pass` every second or
  so; passes of several folders on one host exclude each other (`.fold-lock`);
- a scrape (web/collectors/multiprocess.py) reads, under the shared `.lock`, the archive and the
  files of the instances the last pass listed as readable (`readable.json`), skipping instances
  the archive holds. It lists no directory and checks no process, so its cost is that of the
  live processes, however many died since the last scrape, and it never waits for a fold.

A pass:
 1. lists the directory and sorts the instances: alive; dead and not yet folded;
 2. writes `readable.json`: the alive ones, plus the dead ones the previous list had (scrapes may
    have shown them: dropping them before they are folded would make a sum dip). A process that
    started and ended between two passes was never shown: its values appear with the fold;
 3. reads the dead instances' files (no lock: the dead write nothing), adds them into a copy of
    the archive and replaces the archive atomically. A full disk stops the pass before this
    point takes effect: folding is postponed, scrapes go on reading the files;
 4. writes `readable.json` again with the alive ones only (the dead are in the archive now);
 5. holds `.lock` exclusively for a moment: every scrape that may have read the old archive is
    over, and later ones read the new one;
 6. deletes the folded instances' files and markers. A marker left by a dead process means it
    died without a clean exit: step 3 added it to thread_stops in the archive, so it counts once.
So every sum is exact for each process that lived through one pass, and in every case no scrape
shows less than an earlier one or counts anything twice.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field

from . import directory as metricsdir
from .archive import ARCHIVE_NAME, KEPT, Archive, CorruptFile, read_file, save_json, set_aside

log = logging.getLogger(__name__)

READABLE_NAME = "readable.json"
FOLD_LOCK = ".fold-lock"
WAIT_OUT_READERS = 2.0  # seconds a pass tries to pass between scrapes before it deletes files
# The folder counts into the archive itself, in the same atomic save as the fold (a crash cannot
# count twice), and so has no metric files of its own: on a full disk a process's first write to
# a new page of its mmap'd file is a SIGBUS. Keys as prometheus_client writes them
# (mmap_key; tests/unit/test_metricsdir.py checks them against shared.metrics.definitions).
THREAD_STOPS_KEY = json.dumps(["thread_stops", "thread_stops_total", {},
                               "Worker processes stopped (or found dead)"], sort_keys=True)
CORRUPT_FILES_KEY = json.dumps(
    ["mailpulse_metric_files_corrupt", "mailpulse_metric_files_corrupt_total", {},
     "Corrupt multiprocess metric files found (skipped, set aside once dead)"], sort_keys=True)


@dataclass
class FoldReport:
    crashed: list = field(default_factory=list)  # types of processes that died without clean exit
    set_aside: list = field(default_factory=list)  # paths of corrupt files moved away
    folded: int = 0  # instances folded by this pass
    postponed: str = ""  # why this pass could not finish (a full disk), if it could not


# -- the scrape's side ---------------------------------------------------------------------------

_readable_cache: dict[str, tuple] = {}


def readable(directory: str) -> dict[str, list[tuple[str, str]]]:
    """{instance: [(kind, path)]} that a scrape reads besides the archive.

    The last pass's list, parsed again only when a pass replaced it. Without one (no folder has
    run yet in this directory, or the list is unreadable) every instance in the directory.
    """
    path = os.path.join(directory, READABLE_NAME)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return metricsdir.listing(directory).files
    version = (st.st_ino, st.st_mtime_ns, st.st_size)
    cached = _readable_cache.get(directory)
    if cached is None or cached[0] != version:
        try:
            instances = _load_readable(path)
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            log.warning("%s unreadable, reading every file meanwhile: %s", path, exc)
            return metricsdir.listing(directory).files
        files = {i: [(kind, os.path.join(directory, name)) for kind, name in entries]
                 for i, entries in instances.items()}
        cached = _readable_cache[directory] = (version, files)
    return cached[1]


def _load_readable(path: str) -> dict[str, list]:
    with open(path) as f:
        return dict(json.load(f)["instances"])


# -- the folder's side ---------------------------------------------------------------------------

def fold_pass(directory: str) -> FoldReport:
    """One pass (see the module docstring); an empty report when another folder is at work."""
    report = FoldReport()
    with metricsdir.locked(directory, exclusive=True, blocking=False, name=FOLD_LOCK) as acquired:
        if acquired:
            try:
                _pass(directory, report)
            except OSError as exc:  # ENOSPC, EROFS...: nothing half done matters (see above)
                report.postponed = f"{type(exc).__name__}: {exc.strerror or exc}"
    return report


def _pass(directory: str, report: FoldReport) -> None:
    listing = metricsdir.listing(directory)
    files = listing.files
    alive = {i for i in set(files) | set(listing.markers) if metricsdir.is_alive(i)}
    try:
        archive = Archive.load(directory)
    except CorruptFile as exc:
        log.error("metrics archive unreadable, set aside and started anew: %s", exc)
        report.set_aside.append(set_aside(directory, os.path.join(directory, ARCHIVE_NAME)))
        archive = Archive()
        archive.add("counter", [(CORRUPT_FILES_KEY, 1.0, 0.0)])
    present = set(files) | set(listing.markers)
    dead = sorted(i for i in present if i not in alive and i not in archive.folded)
    written = _load_shown(directory)
    shown = set(files) if written is None else set(written)
    written = _write_readable(directory, files, (alive | (shown & set(dead))) & set(files), written)  # 2.

    remembered = set(archive.folded)
    archive.folded &= present  # instances whose files and marker are all gone need no memory
    markers = set(listing.markers)
    for instance in dead:  # 3.
        if instance in markers:  # died without a clean exit: counted once, with its fold
            archive.add("counter", [(THREAD_STOPS_KEY, 1.0, 0.0)])
            report.crashed.append(_marker_type(metricsdir.marker_path(directory, instance)))
        for kind, path in files.get(instance, ()):
            if kind not in KEPT:
                continue
            try:
                archive.add(kind, read_file(path))
            except FileNotFoundError:
                continue
            except CorruptFile as exc:
                log.error("corrupt metric file set aside: %s", exc)
                report.set_aside.append(set_aside(directory, path))
                if instance not in shown:  # else a scrape may have counted it (it skips them)
                    archive.add("counter", [(CORRUPT_FILES_KEY, 1.0, 0.0)])
    archive.folded |= set(dead)
    if archive.folded != remembered or report.set_aside:
        archive.save(directory)
    report.folded = len(dead)
    _write_readable(directory, files, alive & set(files), written)  # 4.

    doomed = [path for i in archive.folded for _, path in files.get(i, ())]
    doomed += [metricsdir.marker_path(directory, i) for i in archive.folded if i in markers]
    if doomed and _wait_out_readers(directory):  # 5.
        for path in doomed:  # 6.
            metricsdir.remove(path)


def _load_shown(directory: str) -> dict | None:
    """The last list written (instances scrapes may have shown); None when there is none."""
    try:
        return _load_readable(os.path.join(directory, READABLE_NAME))
    except (OSError, ValueError, TypeError, AttributeError):
        return None  # missing or unreadable: any instance may have been shown


def _write_readable(directory: str, files: dict, instances: set[str], written: dict | None) -> dict:
    """Replace the list unless it says this already (no write, no fsync on the common pass)."""
    listed = {i: sorted([kind, os.path.basename(path)] for kind, path in files[i]) for i in sorted(instances)}
    if listed != written:
        save_json(directory, READABLE_NAME, {"instances": listed, "written": time.time()})
    return listed


def _wait_out_readers(directory: str) -> bool:
    """Hold the scrape lock exclusively once (scrapes that read the old archive are over)."""
    deadline = time.monotonic() + WAIT_OUT_READERS
    while True:
        with metricsdir.locked(directory, exclusive=True, blocking=False) as acquired:
            if acquired:
                return True
        if time.monotonic() >= deadline:
            return False  # scrapes without a gap: the files go at a later pass
        time.sleep(0.01)


def _marker_type(path: str) -> str:
    try:
        with open(path) as f:
            return json.load(f).get("type", "")
    except (OSError, ValueError, AttributeError):
        return ""
