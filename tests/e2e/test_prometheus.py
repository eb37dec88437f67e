"""A real Prometheus scrapes the whole stack (the Procfile under honcho, two imap and two webhooks
workers) with a metrics-scope token; after accounts, mail and webhooks, every query of the
Grafana dashboard, its variables filled in, returns data."""

import math

import pytest
import redis

from support.dovecot import Dovecot
from support.monitoring import alert_expressions, dashboard_queries, grafana_regex_value, variable_query
from support.prometheus import PrometheusServer
from support.receiver import Receiver
from support.servers import wait_for
from support.stack import HonchoStack

FAILED_DELIVERIES = 2  # the receiver fails the first deliveries: the failure panels need data


@pytest.fixture
def dovecot():
    with Dovecot() as server:
        yield server


@pytest.fixture
def receiver():
    failures = {"left": FAILED_DELIVERIES}

    def respond(request):
        if failures["left"]:
            failures["left"] -= 1
            return 500
        return 200

    with Receiver(respond=respond) as server:
        yield server


def add_account(stack: HonchoStack, dovecot: Dovecot, user: str, password: str | None = None) -> None:
    imap = dovecot.settings(user)
    if password is not None:
        imap["auth"]["pass"] = password
    response = stack.api("POST", "/v1/account", {
        "account": user, "name": user.title(), "email": f"{user}@example.com", "imap": imap})
    assert response.status_code == 200, response.text


def messages_new(receiver: Receiver) -> list[str]:
    with receiver.lock:
        requests = list(receiver.requests)
    return [r.json["account"] for r in requests if r.json["event"] == "messageNew"]


def token_id(stack: HonchoStack, description: str) -> str:
    listing = stack.mailpulse("tokens", "list")
    assert listing.returncode == 0, listing.stderr
    (row,) = [line for line in listing.stdout.splitlines() if f" {description} " in line]
    return row.split()[0]


def expect(prom: PrometheusServer, expr: str, check) -> None:
    last = {}

    def holds():
        last["value"] = prom.value(expr)
        return last["value"] is not None and check(last["value"])

    try:
        wait_for(holds, timeout=15, interval=0.5, what=expr)
    except AssertionError:
        raise AssertionError(f"{expr}: {last['value']}") from None


def test_prometheus_scrapes_the_stack_and_every_dashboard_query_has_data(tmp_path, dovecot, receiver):
    for user in ("alice", "bob", "mallory"):
        dovecot.add_user(user, f"{user}-password")
    with HonchoStack(tmp_path / "stack", concurrency="imap=2,webhooks=2") as stack, \
            PrometheusServer(tmp_path / "prometheus", stack.address, stack.issue_token("metrics")) as prom:
        # Scraped with the metrics-scope token of the shipped scrape job.
        wait_for(lambda: prom.value('up{job="mailpulse"}') == 1, timeout=30, interval=0.5,
                 what=f"Prometheus to scrape the stack: {prom.targets()}")
        assert prom.value('max(threads{type="imap"})') is not None

        settings = {"webhooks": receiver.url + "/hooks", "webhooksEnabled": True}
        assert stack.api("POST", "/v1/settings", settings).status_code == 200
        add_account(stack, dovecot, "alice")
        add_account(stack, dovecot, "bob")
        add_account(stack, dovecot, "mallory", password="not-her-password")
        assert stack.api("GET", "/v1/account/nobody").status_code == 404
        wait_for(lambda: prom.value('sum(imap_connections{status="connected"})') == 2, timeout=60,
                 interval=0.5, what="two accounts connected, as Prometheus sees them")
        # max_over_time: between retries the account shows `connecting`, as the alert allows for.
        in_error = 'sum(max_over_time(imap_connections{status="authenticationError"}[1m]))'
        wait_for(lambda: prom.value(in_error) == 1, timeout=60, interval=0.5,
                 what="the account with a wrong password in authenticationError")

        dovecot.append("alice", subject="first")
        dovecot.append("alice", subject="second")
        dovecot.append("bob", subject="third")
        for _ in range(3):
            assert stack.api("POST", "/v1/webhooks/test").status_code == 200
        wait_for(lambda: sorted(messages_new(receiver)) == ["alice", "alice", "bob"], timeout=60,
                 interval=0.5, what="three messageNew webhooks")
        # A command Redis rejects (wrong number of arguments), as an operator's typo would be.
        with pytest.raises(redis.ResponseError):
            redis.Redis.from_url(stack.redis_url).execute_command("GET")

        # The dashboard's variable lists this host; its queries are filled in as Grafana does.
        assert variable_query("host") == "label_values(thread_starts, instance)"
        assert prom.label_values("instance", "thread_starts") == [stack.address]
        host = grafana_regex_value(stack.address)
        queries = {(q.panel, q.ref): q.filled(host=host) for q in dashboard_queries()}

        def empty_queries():
            return {key: expr for key, expr in queries.items() if not prom.query(expr)}

        missing = {}
        try:
            # rate() needs two samples of a series in its window: wait for those of new series.
            wait_for(lambda: not empty_queries(), timeout=30, interval=1, what="every dashboard query")
        except AssertionError:
            missing = empty_queries()
        assert missing == {}, "dashboard queries without data"
        nan = {key: expr for key, expr in queries.items()
               if prom.query(expr) and all(math.isnan(float(s["value"][1])) for s in prom.query(expr))}
        assert nan == {}, "dashboard queries with only NaN values"

        # Figures the panels show, as Prometheus has them once it scraped the last changes.
        expect(prom, 'sum(max by (type, recent) (threads{type="webhooks"}))', lambda v: v == 2)
        expect(prom, 'sum(webhooks{status="fail"})', lambda v: v == FAILED_DELIVERIES)
        expect(prom, 'sum(webhooks{event="messageNew",status="success"})', lambda v: v == 3)
        expect(prom, 'sum(webhook_req_count)', lambda v: v >= 3 + 3 + FAILED_DELIVERIES)
        expect(prom, 'max(redis_command_runs_fail{command="get",status="rejected"})', lambda v: v == 1)

        # The alert rules evaluate against real series: all healthy, the wrong password pending.
        rules = prom.rules()
        assert sorted(r["name"] for r in rules) == sorted(alert_expressions())
        assert [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"] == []
        pending = prom.query('ALERTS{alertname="MailpulseAccountsAuthenticationError"}')
        assert [s["metric"]["alertstate"] for s in pending] == ["pending"]

        # Revoking Prometheus' token fails its scrapes: up drops to 0, the scrape alert is pending.
        revoked = stack.mailpulse("tokens", "revoke", token_id(stack, "e2e metrics"))
        assert revoked.returncode == 0, revoked.stderr
        wait_for(lambda: prom.value('up{job="mailpulse"}') == 0, timeout=30, interval=0.5,
                 what="up == 0 once the token is revoked")
        expect(prom, 'count(ALERTS{alertname="MailpulseScrapeFailing",alertstate="pending"})',
               lambda v: v == 1)
    output = stack.output()
    assert "Traceback" not in output
