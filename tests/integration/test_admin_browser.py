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
from support.webhooks import add_failed_job

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
    from playwright.sync_api import expect

    page = browser_page
    refused = []  # Chromium reports each Content-Security-Policy violation on the console
    page.on("console", lambda message: refused.append(message.text)
            if "Content Security Policy" in message.text else None)
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
    assert page.inner_text('[data-state="init"]') == "0"

    # Two accounts through the accounts page (no IMAP worker runs: they stay init / unset).
    page.click("nav >> text=Accounts")
    for account, name, host in (("alice", "Alice", "imap.example.com"), ("bob", "Bob", "")):
        page.fill("#account", account)
        page.fill("#name", name)
        page.fill("#email", f"{account}@example.com")
        if host:
            page.fill("#imap_host", host)
            page.fill("#imap_port", "993")
            page.fill("#imap_user", account)
            page.fill("#imap_pass", "app-password")
        page.click("#add-account button[type=submit]")
        assert f"Added account {account}" in page.inner_text("main")
    assert page.locator('tr[data-account="bob"] .state').inner_text() == "unset"
    page.screenshot(path=str(shots / "admin-accounts.png"), full_page=True)

    # A receiver configured through the webhooks page, then a webhooks worker: it delivers the
    # test webhook sent from the page. The two accountAdded events were emitted while no URL was
    # set: the target is fixed at emit, so they finish without a request (docs/webhooks.md).
    with Receiver() as receiver:
        page.click("nav >> text=Webhooks")
        page.fill("#webhooks", receiver.url + "/hook")
        page.check("input[name=webhooksEnabled]")
        page.click("#webhook-settings button[type=submit]")
        assert "Settings saved" in page.inner_text("main")
        spawn("workers.webhooks", env)
        page.click("text=Send test webhook")
        assert "Test webhook queued" in page.inner_text("main")
        wait_for(lambda: len(receiver.requests) == 1, what="the test webhook to arrive")
        assert [r.json["event"] for r in receiver.requests] == ["test"]

        def overview_counts_it():
            page.goto(web.url + "/admin/")
            return page.inner_text("#webhooks-success") == "1"

        wait_for(overview_counts_it, interval=0.3, what="the overview to count the deliveries")
        wait_for(lambda: page.goto(web.url + "/admin/") and
                 page.inner_text('[data-worker-type="webhooks"]') == "1", interval=0.3,
                 what="the webhooks worker on the overview")
    assert page.inner_text('[data-state="init"]') == "1" and page.inner_text('[data-state="unset"]') == "1"
    page.screenshot(path=str(shots / "admin-overview.png"), full_page=True)

    # rq-dashboard under /admin/rq: its JavaScript loads the queues from the mounted paths and
    # fills its underscore templates, all within its CSP (which forbids framing it).
    page.click("nav >> text=Queues (rq)")
    expect(page.locator("table", has_text="notify").first).to_be_visible()
    job_id = add_failed_job(conn).id
    page.goto(web.url + "/admin/rq/0/view/jobs/notify/failed/8/asc/1")
    expect(page.locator("#jobs tbody", has_text=job_id)).to_be_visible()
    assert page.evaluate("typeof jQuery") == "function" and refused == []
    # Its buttons post with fetch/XHR from this origin: let through (cross-origin ones are not).
    empty = "fetch('/admin/rq/queue/notify/finished/empty', {method: 'POST'}).then(r => r.status)"
    assert page.evaluate(empty) == 200
    page.goto(web.url + "/admin/")

    # Create new: uncheck All scopes, check Metrics.
    page.click("nav >> text=Access tokens")
    expect(page.locator("#scope_all")).to_be_checked()
    expect(page.locator("#scope_metrics")).to_be_disabled()  # admin.js: All scopes covers it
    page.fill("#description", "Prometheus")
    page.uncheck("#scope_all")
    expect(page.locator("#scope_metrics")).to_be_enabled()
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
    assert refused == []
