"""The web process's folder: a child process that folds dead processes' metric files in the background.

`python -m web.folding --parent PID` runs shared.metrics.folding.fold_pass every FOLD_INTERVAL,
the first one at once (so a web start after many deaths folds them), counts in thread_stops the
processes that died without a clean exit (into the archive: the folder has no metric files of its
own, see shared/metrics/folding.py), and exits when its parent is gone or on SIGTERM.

Why a process, not a thread of the web process: folding thousands of dead processes reads
thousands of files; a thread doing that holds the GIL in 5 ms slices against the threads that
answer scrapes, so a scrape would pay for the fold after all. The folder is not a worker: no
heartbeat, no thread_starts, no marker (bootstrap.prepare(register=False)).

FolderProcess is the web process's side: start, restart when it died, stop.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
import time

log = logging.getLogger(__name__)

FOLD_INTERVAL = 0.5  # seconds between passes: a new process shows in /metrics within about this
RESTART_DELAY = 5.0  # seconds before a folder that died is started again
POSTPONED_LOG_EVERY = 60.0


class FolderProcess:
    """The folder child of this web process (it inherits PROMETHEUS_MULTIPROC_DIR)."""

    def __init__(self):
        self.proc: subprocess.Popen | None = None
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    def start(self) -> None:
        self._spawn()
        self._watcher = threading.Thread(target=self._watch, name="folder-watch", daemon=True)
        self._watcher.start()

    def _spawn(self) -> None:
        # -P: as `mailpulse web` runs us, never a checkout in the working directory instead
        argv = [sys.executable, "-P", "-m", "web.folding", "--parent", str(os.getpid())]
        self.proc = subprocess.Popen(argv)

    def _watch(self) -> None:
        while not self._stopping.is_set():
            code = self.proc.wait()
            if self._stopping.is_set():
                return
            log.error("metrics folder (pid %d) exited with %s; starting it again in %g s",
                      self.proc.pid, code, RESTART_DELAY)
            if self._stopping.wait(RESTART_DELAY):
                return
            self._spawn()

    def stop(self, timeout: float = 10) -> None:
        self._stopping.set()
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def run(directory: str, parent: int, stopping: list) -> None:
    from shared.metrics.folding import fold_pass

    last_postponed = 0.0
    while not stopping and os.getppid() == parent:
        report = fold_pass(directory)  # counts crashes and corrupt files into the archive itself
        if report.crashed:
            log.info("%d process(es) died without a clean exit: %s", len(report.crashed),
                     ", ".join(t or "?" for t in report.crashed))
        if report.postponed and time.monotonic() - last_postponed >= POSTPONED_LOG_EVERY:
            log.warning("folding postponed (scrapes read the files meanwhile): %s", report.postponed)
            last_postponed = time.monotonic()
        elif report.folded:
            log.debug("folded %d dead process(es)", report.folded)
        time.sleep(FOLD_INTERVAL)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m web.folding", description="fold dead processes' metric files (web starts it)")
    parser.add_argument("--parent", type=int, required=True, help="the web process's pid: exit once gone")
    args = parser.parse_args()
    from shared.errors import ConfigError
    from shared.runtime import bootstrap

    try:
        config = bootstrap.prepare("web-folder", register=False)
    except ConfigError as exc:
        bootstrap.exit_on_config_error(exc)
    os.nice(10)  # background work: the web process's threads answering scrapes come first
    stopping: list = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))  # a flag: no lock in a handler
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the web process, which stops us
    run(config.PROMETHEUS_MULTIPROC_DIR, args.parent, stopping)


if __name__ == "__main__":
    main()
