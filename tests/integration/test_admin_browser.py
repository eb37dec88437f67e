"""The admin pages in a real headless Chromium (Debian's /usr/bin/chromium, never a downloaded one).

Logs in, points webhooks at a real receiver and sends a test webhook through the pages, creates
a metrics-only token through "Create new", then uses that token: /metrics answers, the API
refuses. Screenshots of the overview and the token page go to MAILPULSE_SCREENSHOTS (a
directory, e.g. `docs`) when set, else to the test's temp dir.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import requests

from support.admin import PASSWORD, set_password
from support.receiver import Receiver
from support.servers import wait_for

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason="Debian chromium is not installed (bin/test installs it)")


@pytest.fixture
def browser_page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1200, "height": 820})
        page = context.new_page()
        page.set_default_timeout(15_000)
        yield page
        context.close()
        browser.close()


@pytest.fixture
def shots(tmp_path) -> Path:
    target = os.environ.get("MAILPULSE_SCREENSHOTS")
    return Path(target) if target else tmp_path


def test_browser_login_metrics_only_token_and_screenshots(web, conn, spawn, env, browser_page, shots):
    page = browser_page
    page.goto(web.url + "/admin/")
    assert "mailpulse admin password" in page.content()  # closed until a password is set
    set_password(conn)

    page.goto(web.url + "/admin/")
    assert page.url.startswith(web.url + "/admin/login")
    page.fill("#password", "not the password")
    page.click("button[type=submit]")
    assert "Wrong password" in page.inner_text("main")
    page.fill("#password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(web.url + "/admin/")
    assert page.inner_text("h1") == "Overview"

    # A webhooks worker and a receiver, configured and tested through the webhooks page.
    spawn("workers.webhooks", env)
    with Receiver() as receiver:
        page.click("nav >> text=Webhooks")
        page.fill("#webhooks", receiver.url + "/hook")
        page.check("input[name=webhooksEnabled]")
        page.click("#webhook-settings button[type=submit]")
        assert "Settings saved" in page.inner_text("main")
        page.click("text=Send test webhook")
        assert "Test webhook queued" in page.inner_text("main")
        wait_for(lambda: receiver.requests, what="the test webhook to arrive")
        assert receiver.requests[0].json["event"] == "test"

        def overview_counts_it():
            page.goto(web.url + "/admin/")
            return page.inner_text("#webhooks-success") == "1"

        wait_for(overview_counts_it, interval=0.3, what="the overview to count the delivery")
        wait_for(lambda: page.goto(web.url + "/admin/") and
                 page.inner_text('[data-worker-type="webhooks"]') == "1", interval=0.3,
                 what="the webhooks worker on the overview")
    page.screenshot(path=str(shots / "admin-overview.png"), full_page=True)

    # Create new: uncheck All scopes, check Metrics.
    page.click("nav >> text=Access tokens")
    assert page.is_checked("#scope_all") and page.is_disabled("#scope_metrics")
    page.fill("#description", "Prometheus")
    page.uncheck("#scope_all")
    page.check("#scope_metrics")
    page.click("#create-token button[type=submit]")
    token = page.inner_text("#new-token-value").strip()
    assert len(token) == 64
    row = page.locator("#tokens tbody tr", has_text="Prometheus")
    assert row.locator(".tag").all_inner_texts() == ["metrics"]
    page.screenshot(path=str(shots / "admin-tokens.png"), full_page=True)

    auth = {"Authorization": f"Bearer {token}"}
    metrics = requests.get(web.url + "/metrics", headers=auth, timeout=10)
    assert metrics.status_code == 200 and "thread_starts" in metrics.text
    api = requests.get(web.url + "/v1/settings", headers=auth, timeout=10)
    assert api.status_code == 403 and api.json()["error"] == "Forbidden"

    page.goto(web.url + "/admin/tokens")
    assert "127.0.0.1" in page.locator("#tokens tbody tr", has_text="Prometheus").inner_text()
    assert token not in page.content()  # shown once only

    page.click("text=Log out")
    page.wait_for_url(web.url + "/admin/login")
    page.goto(web.url + "/admin/tokens")
    assert page.url.startswith(web.url + "/admin/login")
    assert (shots / "admin-overview.png").stat().st_size > 10_000
