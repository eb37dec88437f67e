"""The dashboard and the alerts select only metrics that a real web process's /metrics exposes."""

import pytest

from shared.keys import Keys
from shared.stores.tokens import TokenStore
from support.monitoring import (
    PROMETHEUS_SERIES,
    alert_expressions,
    dashboard_queries,
    exposed_names,
    metric_names,
)
from support.scrape import scrape_text


@pytest.fixture
def exposed(web, conn):
    return exposed_names(scrape_text(web.url, TokenStore(conn, Keys()).issue(["metrics"])))


def test_dashboard_queries_use_exposed_metrics(exposed):
    unknown = {(q.panel, name) for q in dashboard_queries() for name in metric_names(q.expr)
               if name not in exposed}
    assert unknown == set()


def test_every_contract_metric_is_on_the_dashboard(exposed):
    used = {name for q in dashboard_queries() for name in metric_names(q.expr)}
    used |= {name[: -len(suffix)] for name in used for suffix in ("_bucket", "_sum", "_count")
             if name.endswith(suffix)}
    ours = {name for name in exposed if name.startswith("mailpulse_")}
    assert exposed - ours - used == set(), "metrics no panel shows"


def test_alerts_use_exposed_metrics(exposed):
    unknown = {(alert, name) for alert, expr in alert_expressions().items()
               for name in metric_names(expr) if name not in exposed | PROMETHEUS_SERIES}
    assert unknown == set()
