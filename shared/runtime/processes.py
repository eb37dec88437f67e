"""The process types of mailpulse, in one table: the Procfile, the `mailpulse <command>` that starts
each, and what `mailpulse export` writes for supervisord and systemd. A new worker type is one entry.

A process is started by exec: `mailpulse imap` becomes `python -m workers.imap` in the same pid,
so a supervisor's signals reach the worker itself (no shell or wrapper in between to orphan it),
and the IMAP worker's monkey-patching stays the first statement of its entry point. shared never
imports web or workers: the modules are named here, never imported.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

from ..config import Config


@dataclass(frozen=True)
class ProcessType:
    name: str  # Procfile type, and the program name in exported configurations
    command: str  # `mailpulse <command>` starts it
    help: str
    module: str | None  # `python -m <module>`; None for the embedded Redis (a server binary)
    # How long a graceful stop (SIGTERM) may take: supervisors wait this long before SIGKILL.
    stop_seconds: Callable[[Config], float]
    exported: int = 1  # processes `mailpulse export` writes unless --concurrency says otherwise
    most: int | None = None  # at most this many per host


PROCESS_TYPES = (
    ProcessType("web", "web", "the web process: REST API, admin pages, /health, /metrics", "web",
                stop_seconds=lambda config: 20, most=1),  # one per host: it binds PORT
    # Sessions stopping: up to 30 s (workers/imap/worker.py), then the heartbeat and metrics clean-up.
    ProcessType("imap", "imap", "an IMAP worker (gevent): holds accounts, emits events", "workers.imap",
                stop_seconds=lambda config: 45),
    # WEBHOOK_GRACE for attempts in flight, then up to 5 s to cancel the rest, hand back and clean up.
    ProcessType("webhooks", "webhooks", "a webhook worker: delivers events from the queue `notify`",
                "workers.webhooks", stop_seconds=lambda config: config.WEBHOOK_GRACE + 20),
    # SUBMIT_TIMEOUT for sends in flight is too long to wait: they get 20 s, then are handed back.
    ProcessType("submit", "submit", "a submit worker: sends mail over SMTP from the queue `submit`",
                "workers.submit", stop_seconds=lambda config: 30),
    # Saves its data on SIGTERM (AOF fsync, RDB), which can take a while on a large dataset.
    ProcessType("redis", "embedded-redis", "the embedded default Redis (local, persistent under VAR_DIR)",
                None, stop_seconds=lambda config: 60, exported=0, most=1),
)
BY_NAME = {p.name: p for p in PROCESS_TYPES}
BY_COMMAND = {p.command: p for p in PROCESS_TYPES}


def procfile(command: str = "mailpulse") -> str:
    """The Procfile: one line per process type, each starting `<command> <type's command>`."""
    return "".join(f"{p.name}: {command} {p.command}\n" for p in PROCESS_TYPES)


def python_argv(process: ProcessType, args: list[str]) -> list[str]:
    # -P: the working directory (the app root, maybe a checkout) never shadows the installed packages.
    return [sys.executable, "-P", "-m", process.module, *args]


def exec_process(process: ProcessType, args: list[str]) -> None:
    """Become the process (never returns): the worker keeps this pid."""
    if process.module is None:
        from . import embedded_redis

        embedded_redis.exec_server(args)
    else:
        sys.stdout.flush()
        os.execv(sys.executable, python_argv(process, args))
