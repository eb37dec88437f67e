"""A hostile receiver's answer runs no script on the admin pages or in rq-dashboard (Chromium).

Real web and webhooks processes, a raw-socket receiver answering with markup in its status line,
headers and body (100 KB of it, past the 1,024 bytes read), and Debian's Chromium reading
/admin, /admin/webhooks and rq-dashboard's failed-jobs list and job view under /admin/rq.
"""

from __future__ import annotations

import os

import pytest

from shared.events import emit
from support.admin import PASSWORD, set_password
from support.hostile_receiver import HostileReceiver
from support.servers import wait_for
from support.webhooks import KEYS, enable_webhooks, registry_ids
from workers.webhooks.untrusted import TEXT_LIMIT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium is not installed")

MARK = "window.__pwned = (window.__pwned || 0) + 1"
BODY = (f'<img src=x onerror="{MARK}"><script>{MARK}</script>\x1b[31m\x00'.encode()
        + b"<b>" * 30000)
HOSTILE_500 = (f'HTTP/1.1 500 <img src=x onerror="{MARK}">\r\n'
               f'X-Evil: <script>{MARK}</script>\r\nContent-Type: text/html\r\n'
               f'Content-Length: {len(BODY)}\r\n\r\n').encode() + BODY
# Not a status line at all: urllib3's error quotes it, so it reaches the job's exception text.
BAD_STATUS = f'HTTP/1.1 <svg onload="{MARK}"><img src=x onerror="{MARK}">\r\n\r\n'.encode()


def test_hostile_receiver_output_is_shown_as_text(web, conn, env, spawn):
    from playwright.sync_api import sync_playwright

    env.update(WEBHOOK_ATTEMPTS="1")  # fail for good at once: the failed registry and the error flag
    with HostileReceiver({"/a": HOSTILE_500, "/b": BAD_STATUS}) as receiver:
        enable_webhooks(conn, receiver.url + "/a")
        conn.hset(KEYS.account("b"), "webhooks", receiver.url + "/b")
        first = emit(conn, KEYS, "messageNew", account="a")
        spawn("workers.webhooks", env)
        wait_for(lambda: first in registry_ids(conn)["failed"], what="the first job to fail")
        second = emit(conn, KEYS, "messageNew", account="b")  # the last error: the flag shows it
        wait_for(lambda: second in registry_ids(conn)["failed"], what="the second job to fail")

    from rq.job import Job

    errors = [Job.fetch(j, connection=conn).latest_result().exc_string for j in (first, second)]
    assert errors[0].startswith("HTTP 500 (not 2xx) <img src=x onerror=")  # the receiver's words...
    for text in errors:  # ...bounded and printable
        assert len(text) <= TEXT_LIMIT and text.isprintable() and "\x1b" not in text
    assert "onerror" in errors[1]

    set_password(conn)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page()
        page.set_default_timeout(15_000)
        page.goto(web.url + "/admin/login")
        page.fill("#password", PASSWORD)
        page.click("main button[type=submit]")
        page.wait_for_url(web.url + "/admin/")
        views = [("/admin/", None), ("/admin/webhooks", "onerror"),
                 ("/admin/rq/0/view/jobs/notify/failed/8/asc/1", "onerror"),
                 (f"/admin/rq/0/view/job/{first}", "onerror"), (f"/admin/rq/0/view/job/{second}", "onerror")]
        for path, shown in views:
            page.goto(web.url + path)
            if shown:  # rq-dashboard fills its views from JSON: wait until the error is in
                page.wait_for_function("t => document.body.innerText.includes(t)", arg=shown)
            page.wait_for_timeout(300)  # an injected <img src=x> would have failed to load by now
            assert page.evaluate("window.__pwned || 0") == 0, path
            assert page.locator("img[src=x], svg[onload], main script, #job-data script").count() == 0, path
        browser.close()
