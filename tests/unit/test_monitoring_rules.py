"""monitoring/: the scrape job, the alert rules and their promtool unit tests, the dashboard's
queries, all checked by the real promtool (Debian's prometheus package)."""

import yaml

from support.monitoring import (
    ALERTS,
    ALERTS_TEST,
    SCRAPE_CONFIG,
    alert_expressions,
    alert_rules,
    dashboard,
    dashboard_queries,
    metric_names,
    run_promtool,
    variable_query,
)


def test_scrape_config_is_valid():
    result = run_promtool("check", "config", "--syntax-only", str(SCRAPE_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    job = yaml.safe_load(SCRAPE_CONFIG.read_text())["scrape_configs"][0]
    assert job["job_name"] == "mailpulse" and job["metrics_path"] == "/metrics"
    assert job["authorization"]["type"] == "Bearer"
    assert job["static_configs"][0]["targets"] == ["127.0.0.1:3000"]


def test_alert_rules_are_valid():
    result = run_promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_alert_unit_tests_pass():
    result = run_promtool("test", "rules", str(ALERTS_TEST))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_tested_firing_and_quiet():
    firing, quiet = set(), set()
    for case in yaml.safe_load(ALERTS_TEST.read_text())["tests"]:
        for check in case.get("alert_rule_test", ()):
            (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    alerts = set(alert_expressions())
    assert alerts - firing == set(), "alerts never tested firing"
    assert alerts - quiet == set(), "alerts never tested staying quiet"


def test_every_alert_has_severity_and_text():
    for rule in alert_rules():
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]


def test_dashboard_queries_parse(tmp_path):
    """Every panel query, variables filled in, as a recording rule: promtool parses each one."""
    queries = dashboard_queries()
    assert len(queries) >= 30
    rules = [{"record": f"dashboard:query_{i}", "expr": q.filled()} for i, q in enumerate(queries)]
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run_promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_layout_and_variables():
    board = dashboard()
    rows = [p["title"] for p in board["panels"] if p["type"] == "row"]
    assert rows == ["Workers", "API traffic", "Webhooks", "Queues", "IMAP accounts", "Redis"]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    assert variable_query("host") == "label_values(thread_starts, instance)"
    assert variables["host"]["multi"] and variables["host"]["includeAll"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            assert 'instance=~"$host"' in target["expr"], (panel["title"], target["expr"])
    kinds = {p["type"] for p in board["panels"]}
    assert {"heatmap", "timeseries", "stat", "gauge"} <= kinds
    heatmap = [p for p in board["panels"] if p["type"] == "heatmap"][0]
    assert "webhook_req_bucket" in heatmap["targets"][0]["expr"]
    assert heatmap["targets"][0]["format"] == "heatmap"


def test_metric_name_reader():
    assert metric_names('sum by (le) (rate(webhook_req_bucket{instance=~"$host"}[1m]))') == {
        "webhook_req_bucket"}
    assert metric_names("max(redis_latency{a=\"b\"}) / 1e6 + max(redis_uptime_in_seconds)") == {
        "redis_latency", "redis_uptime_in_seconds"}
    assert metric_names("sum by (job, type) (max by (job, type, recent) (threads{x=\"y\"})) == 0") == {
        "threads"}
