"""A real Prometheus server (Debian's `prometheus`) scraping a mailpulse web process.

Its configuration is monitoring/prometheus.yml as shipped, with the test's target, a 1 s scrape
interval, the token in a credentials file, and monitoring/alerts.yml loaded (so the alert rules
are evaluated against real data too).
"""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import requests
import yaml

from .monitoring import ALERTS, SCRAPE_CONFIG
from .servers import free_port, wait_for


class PrometheusError(AssertionError):
    """Prometheus refused a query (a bad expression)."""


def scrape_config(target: str, token_file: Path, interval: str = "1s") -> dict:
    config = yaml.safe_load(SCRAPE_CONFIG.read_text())
    config["global"].update(scrape_interval=interval, evaluation_interval=interval)
    config["rule_files"] = [str(ALERTS)]
    (job,) = config["scrape_configs"]
    job.update(scrape_interval=interval, scrape_timeout=interval)
    job["authorization"]["credentials_file"] = str(token_file)
    job["static_configs"] = [{"targets": [target]}]
    return config


class PrometheusServer:
    def __init__(self, directory: Path, target: str, token: str):
        binary = shutil.which("prometheus")
        assert binary, "prometheus is not installed (bin/test installs Debian's prometheus package)"
        self.binary = binary
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        token_file = directory / "mailpulse.token"
        token_file.write_text(token + "\n")
        token_file.chmod(0o600)
        self.config_path = directory / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(scrape_config(target, token_file)))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = directory / "prometheus.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, f"--config.file={self.config_path}",
                 f"--storage.tsdb.path={self.directory / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT)

        def ready():
            assert self.proc.poll() is None, self.log()
            try:
                return requests.get(self.url + "/-/ready", timeout=2).status_code == 200
            except requests.ConnectionError:
                return False

        wait_for(ready, timeout=60, what="prometheus to be ready")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _get(self, path: str, **params) -> object:
        response = requests.get(self.url + path, params=params, timeout=10)
        body = response.json()
        if body.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        """Instant query: the result vector ([] when the expression selects nothing)."""
        data = self._get("/api/v1/query", query=expr)
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]

    def values(self, expr: str) -> list[float]:
        return [float(sample["value"][1]) for sample in self.query(expr)]

    def value(self, expr: str) -> float | None:
        """The single value of a query, or None when it has none (or is NaN)."""
        found = self.values(expr)
        assert len(found) <= 1, f"{expr}: {len(found)} series"
        return found[0] if found and not math.isnan(found[0]) else None

    def label_values(self, label: str, match: str) -> list[str]:
        """What Grafana's `label_values(match, label)` variable query lists."""
        return self._get(f"/api/v1/label/{label}/values", **{"match[]": match})

    def targets(self) -> list[dict]:
        return self._get("/api/v1/targets")["activeTargets"]

    def rules(self) -> list[dict]:
        return [rule for group in self._get("/api/v1/rules")["groups"] for rule in group["rules"]]
