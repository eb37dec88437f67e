"""/metrics on a real web process: the auth matrix, the contract's names and types, promtool."""

import shutil
import subprocess

import pytest
import requests

from shared.keys import Keys
from shared.stores.tokens import TokenStore
from support.scrape import CONTRACT, parse, scrape_text, types, value


@pytest.fixture
def tokens(conn):
    store = TokenStore(conn, Keys())
    return {scope: store.issue([scope]) for scope in ("*", "api", "metrics")}


@pytest.mark.parametrize("how, status", [
    ("none", 401), ("unknown", 401), ("malformed", 401), ("basic", 401), ("api", 403),
    ("metrics", 200), ("*", 200), ("query", 200), ("query-api", 403),
])
def test_auth_matrix(web, tokens, how, status):
    headers, params = {}, {}
    if how == "unknown":
        headers["Authorization"] = "Bearer " + "f" * 64
    elif how == "malformed":
        headers["Authorization"] = "Bearer not a token"
    elif how == "basic":
        headers["Authorization"] = "Basic " + tokens["metrics"]
    elif how in ("api", "metrics", "*"):
        headers["Authorization"] = "Bearer " + tokens[how]
    elif how == "query":
        params["access_token"] = tokens["metrics"]
    elif how == "query-api":
        params["access_token"] = tokens["api"]
    response = requests.get(web.url + "/metrics", headers=headers, params=params, timeout=10)
    assert response.status_code == status
    if status == 200:
        assert "thread_starts" in response.text
        return
    body = response.json()
    assert body["statusCode"] == status and body["error"] in ("Unauthorized", "Forbidden")
    assert "thread_starts" not in response.text and "redis_" not in response.text
    if status == 401:
        assert response.headers["WWW-Authenticate"] == "Bearer"


def test_header_wins_over_query_parameter(web, tokens):
    response = requests.get(web.url + "/metrics", params={"access_token": tokens["metrics"]},
                            headers={"Authorization": "Bearer " + "f" * 64}, timeout=10)
    assert response.status_code == 401


def test_last_use_is_recorded(web, tokens, conn):
    scrape_text(web.url, tokens["metrics"])
    used = [t for t in TokenStore(conn, Keys()).list() if t.scopes == ("metrics",)][0]
    assert used.last_ip == "127.0.0.1" and used.last_used


def test_every_contract_metric_has_its_type(web, tokens):
    found = types(scrape_text(web.url, tokens["*"]))
    for name, mtype in CONTRACT.items():
        assert found.get(name) == mtype, name


def test_counters_use_contract_names(web, tokens):
    text = scrape_text(web.url, tokens["*"])
    assert "\nthread_starts 1.0\n" in text
    contract_counters = ("thread_starts", "thread_stops", "api_call", "imap_responses", "imap_bytes_sent",
                         "imap_bytes_received", "webhooks", "events", "queues_processed")
    suffixed = tuple(f"{c}_total" for c in contract_counters)
    suffixed += tuple(f"# TYPE {name}" for name in suffixed)
    assert [line for line in text.splitlines() if line.startswith(suffixed)] == []
    assert "_created" not in text
    samples = parse(text)
    for state in ("init", "connecting", "connected", "syncing", "authenticationError",
                  "connectError", "disconnected", "unset"):
        assert value(samples, "imap_connections", status=state) == 0
    assert value(samples, "threads", type="web", recent="yes") == 1
    # Known label sets start at 0, so the first failure is a step that rate() and alerts see.
    assert value(samples, "webhooks", status="fail", event="messageNew") == 0
    assert value(samples, "events", event="authenticationError") == 0
    assert value(samples, "imap_responses", response="NO", code="") == 0
    # Our own counters keep the suffix.
    assert value(samples, "mailpulse_imap_api_requests_total", op="message") == 0


# The contract keeps EmailEngine's names, which promtool's style lint dislikes: counters without
# `_total`, gauges named `..._total`, the camelCase label `statusCode`, and a few others below.
# Any finding other than these (a parse error, a missing HELP, a duplicate) fails the test.
def allowed_lint(line: str) -> bool:
    name, _, problem = line.partition(" ")
    return (
        (problem == 'counter metrics should have "_total" suffix' and CONTRACT.get(name) == "counter")
        or (problem == 'non-counter metrics should not have "_total" suffix'
            and CONTRACT.get(name) == "gauge")
        or (problem == "label names should be written in 'snake_case' not 'camelCase'" and name == "api_call")
        or (problem == "metric names should not contain abbreviated units"
            and name == "redis_instantaneous_ops_per_sec")
        or (problem == 'non-histogram and non-summary metrics should not have "_count" suffix'
            and name == "redis_key_count")
    )


def test_promtool_finds_nothing_beyond_the_contract_names(web, tokens):
    assert shutil.which("promtool"), "promtool is missing (bin/test installs Debian's prometheus)"
    requests.get(web.url + "/v1/stats", headers={"Authorization": "Bearer " + tokens["api"]}, timeout=10)
    text = scrape_text(web.url, tokens["*"])
    result = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    findings = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode in (0, 3), findings  # 3 = lint findings only; 1 would be a parse error
    assert [f for f in findings if not allowed_lint(f)] == []
