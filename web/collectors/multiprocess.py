"""Every process's metrics on this host: the archive of dead ones plus the files of the rest.

Like prometheus_client's MultiProcessCollector, but reading, under the directory's shared lock,
the archive that folding maintains and the files of the instances its last pass listed
(shared/metrics/folding.py), skipping instances already folded and skipping (not failing on) a
corrupt file: one bad file never breaks /metrics. No directory listing, no process check: a
scrape costs what the live processes cost, however many died since the last one.
"""

from __future__ import annotations

import json
import logging
import os
import threading

from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

from shared.metrics import definitions as metrics
from shared.metrics import directory as metricsdir
from shared.metrics import folding
from shared.metrics.archive import ARCHIVE_NAME, Archive, CorruptFile, read_file

log = logging.getLogger(__name__)
_reported: set[str] = set()
_reported_lock = threading.Lock()


def report_corrupt(path: str, error: object, count: bool = True) -> None:
    """Log and count each corrupt file once per web process (by name: setting aside moves it).

    count=False for the archive: the folder that sets it aside counts it (web/folding.py).
    """
    with _reported_lock:
        if os.path.basename(path) in _reported:
            return
        _reported.add(os.path.basename(path))
    log.error("corrupt metric file skipped: %s", error)
    if count:
        metrics.safely(metrics.metric_files_corrupt.inc)


def _add(found: dict, kind: str, instance: str, entries) -> None:
    typ = kind.split("_", 1)[0]
    parsed = [(_parse_key(key), value, timestamp) for key, value, timestamp in entries]  # may raise
    for (metric_name, name, labels, help_text), value, timestamp in parsed:
        metric = found.get(metric_name)
        if metric is None:
            metric = found[metric_name] = Metric(metric_name, help_text, typ)
        labels_key = tuple(sorted(labels.items()))
        if typ == "gauge":
            metric._multiprocess_mode = kind[len("gauge_"):]
            metric.add_sample(name, labels_key + (("pid", instance),), value, timestamp)
        else:
            metric.add_sample(name, labels_key, value)


_key_cache: dict[str, tuple] = {}


def _parse_key(key: str) -> tuple:
    parsed = _key_cache.get(key)
    if parsed is None:
        parsed = _key_cache[key] = tuple(json.loads(key))
    return parsed


class FoldedMultiProcessCollector:
    def __init__(self, directory: str):
        self.directory = directory

    def collect(self):
        found: dict[str, Metric] = {}
        with metricsdir.locked(self.directory, exclusive=False):
            try:
                archive = Archive.load_shared(self.directory)
            except CorruptFile as exc:  # folding sets it aside; until then, go on without it
                report_corrupt(os.path.join(self.directory, ARCHIVE_NAME), exc, count=False)
                archive = Archive()
            for kind, table in archive.values.items():
                _add(found, kind, "archive", ((k, v, ts) for k, (v, ts) in table.items()))
            for instance, files in folding.readable(self.directory).items():
                if instance in archive.folded:
                    continue
                alive = None
                for kind, path in files:
                    if kind.startswith("gauge_live"):  # a process gone since the last fold pass
                        alive = metricsdir.is_alive(instance) if alive is None else alive
                        if not alive:  # has no live gauges any more (its counters stay in)
                            continue
                    try:
                        _add(found, kind, instance, read_file(path))
                    except FileNotFoundError:
                        continue  # a live gauge file removed by a clean exit meanwhile
                    except (CorruptFile, ValueError, TypeError) as exc:
                        report_corrupt(path, exc)
        # Per-mode merging (sum, livesum, max, histogram buckets...) is prometheus_client's own.
        return MultiProcessCollector._accumulate_metrics(found, accumulate=True)
