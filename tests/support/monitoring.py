"""The monitoring assets as tests read them: dashboard queries, alert expressions, metric names."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass

import yaml

from .servers import ROOT

MONITORING = ROOT / "monitoring"
DASHBOARD = MONITORING / "grafana-dashboard.json"
ALERTS = MONITORING / "alerts.yml"
ALERTS_TEST = MONITORING / "alerts_test.yml"
SCRAPE_CONFIG = MONITORING / "prometheus.yml"

# Grafana's built-in interval variable: what it is worth at a 15 s scrape interval (4 x 15 s).
RATE_INTERVAL = "1m"
# Series Prometheus itself writes for every target (the alerts use them).
PROMETHEUS_SERIES = {"up", "scrape_duration_seconds"}
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
             "group_left", "group_right", "inf", "nan", "Inf", "NaN"}


def promtool() -> str:
    binary = shutil.which("promtool")
    assert binary, "promtool is not installed (bin/test installs Debian's prometheus package)"
    return binary


def run_promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


@dataclass
class Query:
    panel: str
    ref: str
    expr: str

    def filled(self, host: str = ".*", rate_interval: str = RATE_INTERVAL) -> str:
        """The expression as Grafana sends it, with the dashboard's variables filled in."""
        return (self.expr.replace("$__rate_interval", rate_interval)
                .replace("${host}", host).replace("$host", host))


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def _panels(panels):
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", ()))  # collapsed rows hold their panels


def dashboard_queries() -> list[Query]:
    return [Query(panel["title"], target["refId"], target["expr"])
            for panel in _panels(dashboard()["panels"]) for target in panel.get("targets", ())]


def variable_query(name: str) -> str:
    for variable in dashboard()["templating"]["list"]:
        if variable["name"] == name:
            query = variable["query"]
            return query["query"] if isinstance(query, dict) else query
    raise KeyError(name)


def alert_rules() -> list[dict]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def alert_expressions() -> dict[str, str]:
    return {rule["alert"]: rule["expr"] for rule in alert_rules()}


def metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (a small reader: enough for the queries we write)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.$])[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        if text[match.end():].lstrip().startswith("(") or match.group() in _KEYWORDS:
            continue  # a function or aggregation, or an operator word
        names.add(match.group())
    return names


def exposed_names(exposition: str) -> set[str]:
    """Family names (TYPE lines) and sample names of a /metrics text."""
    names = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            names.add(line.split(" ")[2])
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def grafana_regex_value(value: str) -> str:
    """A multi-value variable's value as Grafana writes it into a PromQL regex matcher."""
    return re.sub(r"[$^*{}\[\]'+?.()|]", lambda m: "\\\\" + m.group(), value.replace("\\", "\\\\\\\\"))
