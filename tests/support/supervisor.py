"""A real supervisord (Debian's `supervisor`) running what `mailpulse export supervisord` wrote.

    with Supervisor(tmp_path, home) as sv:       # home: an app root with its .env
        sv.pids()                                # {"mailpulse-web-1": 1234, ...} of RUNNING programs
        sv.ctl("stop", "mailpulse:*")

supervisord is started in `/` with a bare environment (no virtualenv on PATH, no mailpulse
settings), as a service manager starts it: everything the processes need must come from the
exported file and the app root.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from .servers import wait_for

MAILPULSE = Path(sys.executable).parent / "mailpulse"
MAIN_CONF = """\
[unix_http_server]
file={dir}/supervisor.sock
[supervisord]
logfile={dir}/supervisord.log
pidfile={dir}/supervisord.pid
childlogdir={dir}/log
nodaemon=true
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[supervisorctl]
serverurl=unix://{dir}/supervisor.sock
[include]
files={dir}/conf.d/*.conf
"""


def mailpulse_pids(home: Path) -> set[int]:
    """Pids of every process whose environment names this app root (all the exported ones)."""
    marker = f"MAILPULSE_HOME={home}".encode()
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    found.add(int(entry.name))
            except OSError:  # gone meanwhile, or a kernel thread
                pass
    return found


def with_children(pids) -> set[int]:
    """The pids and their children (the web process runs its metrics folder as a child)."""
    found = set(pids)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_bytes()
            except OSError:
                continue
            if int(stat[stat.rindex(b")") + 2:].split()[1]) in found:
                found.add(int(entry.name))
    return found


class Supervisor:
    def __init__(self, directory: Path, home: Path, export_args=()):
        assert shutil.which("supervisord"), "supervisor is not installed (bin/test installs it)"
        self.dir = directory
        self.home = home
        self.log_dir = directory / "log"
        directory.mkdir(parents=True, exist_ok=True)
        exported = subprocess.run([str(MAILPULSE), "export", "supervisord", str(directory / "conf.d"),
                                   "--home", str(home), "-l", str(self.log_dir), *export_args],
                                  capture_output=True, text=True, timeout=60)
        assert exported.returncode == 0, exported.stderr
        self.conf = directory / "supervisord.conf"
        self.conf.write_text(MAIN_CONF.format(dir=directory))
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(["supervisord", "-c", str(self.conf)], cwd="/",
                                     env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"},
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_for(lambda: (self.dir / "supervisor.sock").exists(), what="supervisord to listen")

    def ctl(self, *args: str, check: bool = True) -> str:
        result = subprocess.run(["supervisorctl", "-c", str(self.conf), *args], capture_output=True,
                                text=True, timeout=120)
        assert not check or result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def status(self) -> dict[str, tuple[str, int | None]]:
        """{program: (state, pid)}, e.g. {"mailpulse-web-1": ("RUNNING", 1234)}."""
        states = {}
        for line in self.ctl("status", check=False).splitlines():
            parts = line.split()
            name, state = parts[0].split(":")[-1], parts[1]
            pid = int(parts[3].rstrip(",")) if state == "RUNNING" else None
            states[name] = (state, pid)
        return states

    def pids(self) -> dict[str, int]:
        return {name: pid for name, (state, pid) in self.status().items() if state == "RUNNING"}

    def log(self) -> str:
        return (self.dir / "supervisord.log").read_text(errors="replace")

    def program_log(self, program: str) -> str:
        return (self.log_dir / f"{program.removeprefix('mailpulse-')}.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # supervisord stops its programs, then itself
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        for pid in mailpulse_pids(self.home):  # a failed test must not leave workers behind
            os.kill(pid, signal.SIGKILL)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
