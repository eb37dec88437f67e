"""The whole stack as users start it: the real Procfile under honcho, embedded Redis included.

    with HonchoStack(tmp_path, concurrency="imap=2,webhooks=2") as stack:
        token = stack.issue_token("metrics")
        stack.api("POST", "/v1/settings", {...})
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import requests

from .servers import ROOT, free_port, wait_for

BIN = Path(sys.executable).parent


class HonchoStack:
    """`bin_dir` holds the honcho and mailpulse to use (the virtualenv's), `app_dir` the Procfile;
    `processes` names the Procfile types to start (all when empty)."""

    def __init__(self, tmp_path: Path, concurrency: str = "imap=2,webhooks=2", bin_dir: Path = BIN,
                 app_dir: Path = ROOT, processes=(), **settings):
        self.tmp_path = tmp_path
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.concurrency = concurrency
        self.bin_dir, self.app_dir, self.processes = bin_dir, app_dir, list(processes)
        self.redis_port, self.web_port = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMETHEUS_", "REDIS_"))}
        # The Procfile runs `mailpulse ...` from PATH, as from a user's activated virtualenv; the
        # embedded Redis serves the port REDIS_URL names.
        env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', os.defpath)}", VAR_DIR=str(tmp_path / "var"),
                   REDIS_URL=self.redis_url, HEARTBEAT_INTERVAL="1", PYTHONUNBUFFERED="1")
        env.update({k: str(v) for k, v in settings.items()})
        self.env = env
        self.log_path = tmp_path / "honcho.log"
        self.proc: subprocess.Popen | None = None
        self._api_token: str | None = None

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def address(self) -> str:
        """host:port of the web process, as a Prometheus target."""
        return f"127.0.0.1:{self.web_port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def start(self) -> None:
        # honcho gives the first Procfile entry (web) the PORT of its env file: ours, not the repo's .env.
        env_file = self.tmp_path / "honcho.env"
        env_file.write_text(f"PORT={self.web_port}\n")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(self.bin_dir / "honcho"), "start", "-e", str(env_file), "-c", self.concurrency,
                 *self.processes], cwd=self.app_dir, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)

        def healthy():
            try:
                return requests.get(self.url + "/health", timeout=5).status_code == 200
            except requests.ConnectionError:
                assert self.proc.poll() is None, self.output()
                return False

        wait_for(healthy, timeout=60, what="the stack to be healthy")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)  # honcho stops every process, as Ctrl-C does
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()

    def mailpulse(self, *args: str) -> subprocess.CompletedProcess:
        """The `mailpulse` command against this stack's Redis."""
        return subprocess.run([str(self.bin_dir / "mailpulse"), *args], cwd=self.app_dir, env=self.env,
                              capture_output=True, text=True, timeout=60)

    def issue_token(self, scope: str) -> str:
        issued = self.mailpulse("tokens", "issue", "--scope", scope, "--description", f"e2e {scope}")
        assert issued.returncode == 0, issued.stderr
        return issued.stdout.strip().splitlines()[-1]

    def api(self, method: str, path: str, body=None) -> requests.Response:
        """A /v1 call with an api-scope token."""
        if self._api_token is None:
            self._api_token = self.issue_token("api")
        return requests.request(method, self.url + path, json=body, timeout=10,
                                headers={"Authorization": f"Bearer {self._api_token}"})
