"""Start real servers on free loopback ports: redis-server, and mailpulse's own processes."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.05, what: str = "condition"):
    """Poll until predicate() is truthy; return its value or fail the test."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class RedisServer:
    """A real redis-server in a temp dir; stop() and start() again on the same port."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed (bin/test installs it)"
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
             "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        client = redis.Redis(port=self.port)

        def answers():
            try:
                return client.ping()
            except redis.ConnectionError:
                return False

        wait_for(answers, what="redis-server to answer")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def _realtime() -> None:
    try:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(1))
    except OSError:  # not permitted here: the ordinary priority, and the load counts
        pass


class Process:
    """A mailpulse process (`python -m <module>`) with its output in a log file."""

    def __init__(self, module: str, env: dict, log_path: Path, args=()):
        self.module = module
        self.log_path = log_path
        self._log = open(log_path, "ab")
        # MAILPULSE_TEST_REALTIME=1 (tests only): round-robin real-time scheduling, so that a
        # process whose event loop gevent's blocking monitor watches (a wall-clock measure) is not
        # reported for time the load of a shared machine took from it. The kernel still keeps 5%
        # of each core for everything else (sched_rt_runtime_us).
        realtime = env.get("MAILPULSE_TEST_REALTIME") == "1"
        self.proc = subprocess.Popen([sys.executable, "-m", module, *args], cwd=ROOT, env=env,
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     preexec_fn=_realtime if realtime else None)
        self.pid = self.proc.pid

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig=signal.SIGTERM, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def kill(self) -> int:
        return self.stop(signal.SIGKILL)


def base_env(redis_url: str, tmp: Path, **extra) -> dict:
    """Environment for a mailpulse process under test: its own metrics dir and state dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMETHEUS_", "REDIS_"))}
    env.update(REDIS_URL=redis_url, VAR_DIR=str(tmp / "var"), PROMETHEUS_MULTIPROC_DIR=str(tmp / "metrics"),
               SERVICE_SECRET="test-secret-" + "0" * 20, HEARTBEAT_INTERVAL="0.5", PORT=str(free_port()),
               REDIS_WAIT_SECONDS="10", PYTHONUNBUFFERED="1")
    env.update({k: str(v) for k, v in extra.items()})
    return env


def start_web(spawn, env: dict) -> Process:
    """Start the web process through the `spawn` fixture; returns it, listening, with `.url` set."""
    import requests  # test extra; imported here so servers.py stays usable without it

    proc = spawn("web", env)
    proc.url = f"http://127.0.0.1:{env['PORT']}"

    def listening():
        try:
            return requests.get(proc.url + "/health", timeout=2) is not None
        except requests.ConnectionError:
            assert proc.proc.poll() is None, proc.output()
            return False

    wait_for(listening, what="the web process to listen")
    return proc
