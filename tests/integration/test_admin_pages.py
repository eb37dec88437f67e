"""The admin pages on a real web process and a real Redis, over plain HTTP."""

from __future__ import annotations

import html
import re
import subprocess
import sys

import pytest
import requests
from rq import Queue

from shared.keys import Keys
from shared.stores.tokens import TokenStore
from support.admin import PASSWORD, csrf_of, logged_in, login, post_form, set_password
from support.servers import ROOT
from support.webhooks import add_failed_job, notify_queue

PAGES = ["/admin/", "/admin/login", "/admin/tokens", "/admin/webhooks", "/admin/accounts", "/admin/rq/",
         "/admin/rq/0/data/queues.json"]



def new_token_in(page: str) -> str:
    match = re.search(r'id="new-token-value">([0-9a-f]{64})<', page)
    assert match, "the new token is not shown"
    return match.group(1)


@pytest.mark.parametrize("path", PAGES)
def test_without_a_password_every_page_says_how_to_set_it(web, path):
    response = requests.get(web.url + path, timeout=10, allow_redirects=False)
    assert response.status_code == 503
    assert "mailpulse admin password" in response.text
    assert "csrf_token" not in response.text and "Log in" not in response.text


def test_without_a_password_the_stylesheet_is_still_served(web):
    response = requests.get(web.url + "/admin/static/admin.css", timeout=10)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/css")


def test_without_a_password_login_is_refused(web):
    response = requests.post(web.url + "/admin/login", data={"password": "anything"}, timeout=10)
    assert response.status_code == 503 and "mailpulse admin password" in response.text


def test_cli_sets_the_password_hashed(web, env, conn):
    run = subprocess.run([sys.executable, "-m", "shared.cli", "admin", "password", "--password-stdin"],
                         input=PASSWORD + "\n", env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    stored = conn.get(Keys().admin_password).decode()
    assert stored.startswith("scrypt$") and PASSWORD not in stored
    assert login(web.url)[1].status_code == 302


@pytest.mark.parametrize("given, message", [("short", "at least 8"), ("", "at least 8")])
def test_cli_refuses_a_short_password(env, conn, given, message):
    run = subprocess.run([sys.executable, "-m", "shared.cli", "admin", "password", "--password-stdin"],
                         input=given + "\n", env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and message in run.stderr and "Traceback" not in run.stderr
    assert conn.get(Keys().admin_password) is None


def test_pages_need_a_login(admin):
    for path in ("/admin/", "/admin/tokens", "/admin/webhooks", "/admin/rq/"):
        response = requests.get(admin + path, timeout=10, allow_redirects=False)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/admin/login?next=")


def test_wrong_password_is_rejected(admin):
    session, response = login(admin, "wrong password")
    assert response.status_code == 401 and "Wrong password" in response.text
    assert "mailpulse_admin" not in session.cookies.get_dict()
    assert session.get(admin + "/admin/", timeout=10, allow_redirects=False).status_code == 302


def test_login_without_its_csrf_token_is_rejected(admin):
    response = requests.post(admin + "/admin/login", data={"password": PASSWORD}, timeout=10,
                             allow_redirects=False)
    assert response.status_code == 400 and "expired" in response.text
    assert "mailpulse_admin=" not in response.headers.get("Set-Cookie", "")


def test_session_cookie_flags(admin):
    _, response = login(admin)
    assert response.status_code == 302 and response.headers["Location"] == "/admin/"
    cookie = [c for c in response.raw.headers.getlist("Set-Cookie") if c.startswith("mailpulse_admin=")][0]
    flags = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")}
    assert "httponly" in flags and flags["samesite"] == "SameSite=Strict" and flags["path"] == "Path=/admin"
    assert "secure" not in flags  # served over plain http here
    assert "expires" not in flags and "max-age" not in flags  # ends with the browser session...


def test_sessions_expire_in_redis_when_idle(admin, conn):
    logged_in(admin)
    keys = list(conn.scan_iter(match="mp:admin-session:*"))
    assert len(keys) == 1
    assert 0 < conn.ttl(keys[0]) <= 8 * 3600  # ...and in Redis after 8 idle hours
    session_id_hash = keys[0].decode().rsplit(":", 1)[1]
    assert len(session_id_hash) == 64  # only the hash of the cookie's id is stored


def test_login_next_never_leaves_admin(admin):
    session = requests.Session()
    form = session.get(admin + "/admin/login", timeout=10)
    response = session.post(admin + "/admin/login", timeout=10, allow_redirects=False, data={
        "password": PASSWORD, "csrf_token": csrf_of(form.text), "next": "//evil.example/"})
    assert response.headers["Location"] == "/admin/"


def test_login_attempts_are_limited(admin):
    for _ in range(10):
        assert login(admin, "wrong password")[1].status_code == 401
    _, response = login(admin)
    assert response.status_code == 429 and "Too many failed attempts" in response.text


def test_post_without_csrf_token_is_refused(admin, conn):
    session = logged_in(admin)
    for data in ({"description": "x", "scope_all": "1"},
                 {"description": "x", "scope_all": "1", "csrf_token": "forged"}):
        response = session.post(admin + "/admin/tokens", data=data, timeout=10)
        assert response.status_code == 400
    assert session.post(admin + "/admin/webhooks/test", timeout=10).status_code == 400
    assert TokenStore(conn, Keys()).list() == []
    assert Queue("notify", connection=conn).count == 0


def test_overview_shows_the_figures(admin):
    page = logged_in(admin).get(admin + "/admin/", timeout=10)
    assert page.status_code == 200
    assert 'data-worker-type="web">1<' in page.text
    assert 'data-queue="notify" data-state="waiting">0<' in page.text
    assert 'id="webhooks-success">0<' in page.text and "Redis memory" in page.text
    for header, value in (("Cache-Control", "no-store"), ("X-Frame-Options", "DENY")):
        assert page.headers[header] == value


def test_create_all_scopes_and_metrics_only_tokens(admin, conn):
    session = logged_in(admin)
    page = post_form(session, admin, "/admin/tokens", "/admin/tokens",
                     {"description": "everything", "scope_all": "1"})
    assert page.status_code == 200
    full = new_token_in(page.text)
    page = post_form(session, admin, "/admin/tokens", "/admin/tokens",
                     {"description": "prometheus", "scope_metrics": "1"})
    metrics_only = new_token_in(page.text)
    store = TokenStore(conn, Keys())
    assert store.verify(full).scopes == ("*",) and store.verify(metrics_only).scopes == ("metrics",)
    listing = session.get(admin + "/admin/tokens", timeout=10).text
    assert "everything" in listing and "prometheus" in listing
    assert full not in listing and metrics_only not in listing  # shown once only

    def status(path, token):
        headers = {"Authorization": f"Bearer {token}"}
        return requests.get(admin + path, headers=headers, timeout=10).status_code

    assert status("/metrics", metrics_only) == 200 and status("/v1/settings", metrics_only) == 403
    assert status("/metrics", full) == 200 and status("/v1/settings", full) == 200
    used = session.get(admin + "/admin/tokens", timeout=10).text
    assert "127.0.0.1" in used  # last used from


def test_token_without_any_scope_is_refused(admin, conn):
    session = logged_in(admin)
    page = post_form(session, admin, "/admin/tokens", "/admin/tokens", {"description": "none"})
    assert page.status_code == 400 and "Scopes: choose All scopes or at least one scope" in page.text
    assert TokenStore(conn, Keys()).list() == []


def test_revoke(admin, conn):
    session = logged_in(admin)
    token = new_token_in(post_form(session, admin, "/admin/tokens", "/admin/tokens",
                                   {"description": "to revoke", "scope_all": "1"}).text)
    token_id = TokenStore(conn, Keys()).verify(token).id
    page = post_form(session, admin, "/admin/tokens", f"/admin/tokens/{token_id}/revoke", {})
    assert page.status_code == 200 and f"Revoked token <code>{token_id}</code>" in page.text
    assert f'data-token-id="{token_id}"' not in page.text
    assert TokenStore(conn, Keys()).verify(token) is None
    assert requests.get(admin + "/metrics", headers={"Authorization": f"Bearer {token}"},
                        timeout=10).status_code == 401


def test_webhook_settings_form(admin, conn):
    session = logged_in(admin)
    bad = post_form(session, admin, "/admin/webhooks", "/admin/webhooks",
                    {"webhooks": "ftp://example.com/", "webhooksEnabled": "1", "event_all": "1"})
    assert bad.status_code == 400
    assert 'data-field="webhooks"' in bad.text and "must be an http:// or https:// URL" in bad.text
    assert 'value="ftp://example.com/"' in bad.text  # the input is kept for correction
    saved_before = session.get(admin + "/admin/webhooks", timeout=10).text
    assert 'value=""' in saved_before  # nothing was saved

    good = post_form(session, admin, "/admin/webhooks", "/admin/webhooks",
                     {"webhooks": "https://example.com/hook", "webhooksEnabled": "1",
                      "event": ["messageNew", "messageDeleted"]})
    assert good.status_code == 200 and "Settings saved" in good.text
    token = TokenStore(conn, Keys()).issue(["api"])
    api = requests.get(admin + "/v1/settings", headers={"Authorization": f"Bearer {token}"},
                       timeout=10).json()
    assert api["webhooks"] == "https://example.com/hook" and api["webhooksEnabled"] is True
    assert api["webhookEvents"] == ["messageNew", "messageDeleted"]


def test_no_event_chosen_is_an_error(admin):
    session = logged_in(admin)
    page = post_form(session, admin, "/admin/webhooks", "/admin/webhooks", {"webhooks": ""})
    assert page.status_code == 400 and 'data-field="webhookEvents"' in page.text


def test_send_test_webhook_enqueues_a_test_event(admin, conn):
    session = logged_in(admin)
    page = post_form(session, admin, "/admin/webhooks", "/admin/webhooks/test", {})
    assert page.status_code == 200 and "Test webhook queued" in page.text
    queue = Queue("notify", connection=conn)
    jobs = queue.get_jobs()
    assert len(jobs) == 1 and jobs[0].args[0]["event"] == "test"
    assert jobs[0].id in page.text


def test_last_webhook_error_is_shown(admin, conn):
    from shared.stores.settings import error_flag

    flag = error_flag("messageNew", "HTTP 500 (not 2xx)", "https://example.com/x", 500)
    conn.set(Keys().webhook_error, flag)
    page = logged_in(admin).get(admin + "/admin/webhooks", timeout=10).text
    assert "HTTP 500 (not 2xx)" in page and "https://example.com/x" in page


def test_logout_ends_the_session(admin):
    session = logged_in(admin)
    cookie = session.cookies.get("mailpulse_admin")
    response = post_form(session, admin, "/admin/", "/admin/logout", {}, allow_redirects=False)
    assert response.status_code == 302 and response.headers["Location"] == "/admin/login"
    assert "mailpulse_admin=;" in response.headers["Set-Cookie"]
    replay = requests.get(admin + "/admin/", cookies={"mailpulse_admin": cookie}, timeout=10,
                          allow_redirects=False)
    assert replay.status_code == 302  # the old cookie is worthless


def test_a_new_password_ends_existing_sessions(admin, conn):
    session = logged_in(admin)
    set_password(conn, "another password")
    assert session.get(admin + "/admin/", timeout=10, allow_redirects=False).status_code == 302


def test_rq_dashboard_behind_the_login(admin, conn):
    response = requests.get(admin + "/admin/rq/", timeout=10, allow_redirects=False)
    assert response.status_code == 302 and response.headers["Location"] == "/admin/login?next=/admin/rq/"
    session = logged_in(admin)
    post_form(session, admin, "/admin/webhooks", "/admin/webhooks/test", {})  # the queue exists now
    page = session.get(admin + "/admin/rq/", timeout=10)
    assert page.status_code == 200 and "RQ" in page.text
    queues = session.get(admin + "/admin/rq/0/data/queues.json", timeout=10).json()["queues"]
    notify = [q for q in queues if q["name"] == "notify"]
    assert notify and notify[0]["count"] == 1
    static = re.search(r'href="(/admin/rq/static/[^"]+\.css)', html.unescape(page.text))
    assert static and session.get(admin + static.group(1), timeout=10).status_code == 200


def test_rq_dashboard_refuses_cross_origin_changes(admin, conn):
    session = logged_in(admin)
    post_form(session, admin, "/admin/webhooks", "/admin/webhooks/test", {})
    response = session.post(admin + "/admin/rq/queue/notify/queued/empty", timeout=10,
                            headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert Queue("notify", connection=conn).count == 1
    response = session.post(admin + "/admin/rq/queue/notify/queued/empty", timeout=10,
                            headers={"Origin": admin})
    assert response.status_code == 200 and Queue("notify", connection=conn).count == 0


def test_rq_dashboard_actions_refuse_get(admin, conn):
    """rq-dashboard 0.9 re-queues every failed job on `GET /requeue/<queue>`: that GET is refused."""
    add_failed_job(conn)
    queue = notify_queue(conn)
    failed = queue.failed_job_registry
    session = logged_in(admin)
    for method in ("GET", "HEAD"):
        response = session.request(method, admin + "/admin/rq/requeue/notify", timeout=10,
                                   headers={"Origin": admin}, allow_redirects=False)
        assert response.status_code == 405 and response.headers["Allow"] == "POST"
    assert session.get(admin + "/admin/rq/job/x/delete", timeout=10).status_code == 405
    assert failed.count == 1 and queue.count == 0
    refused = session.post(admin + "/admin/rq/requeue/notify", timeout=10, headers={"Origin": "http://evil.example"})
    assert refused.status_code == 403 and failed.count == 1
    response = session.post(admin + "/admin/rq/requeue/notify", timeout=10, headers={"Origin": admin})
    assert response.status_code == 200 and response.json() == {"status": "OK", "count": 1}
    assert failed.count == 0 and queue.count == 1
    assert session.get(admin + "/admin/rq/0/data/queues.json", timeout=10).status_code == 200  # reads work


def test_rq_dashboard_responses_carry_the_security_headers(admin, conn):
    session = logged_in(admin)
    for path, status in (("/admin/rq/", 200), ("/admin/rq/0/data/queues.json", 200),
                         ("/admin/rq/requeue/notify", 405), ("/admin/rq/7/data/queues.json", 404)):
        response = session.get(admin + path, timeout=10, allow_redirects=False)
        assert response.status_code == status, path
        assert response.headers["X-Frame-Options"] == "DENY", path
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"], path
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    anonymous = requests.get(admin + "/admin/rq/", timeout=10, allow_redirects=False)
    assert anonymous.status_code == 302 and anonymous.headers["X-Frame-Options"] == "DENY"


def test_unknown_admin_paths_get_an_html_page(admin):
    for session in (requests.Session(), logged_in(admin)):
        response = session.get(admin + "/admin/no-such-page", timeout=10)
        assert response.status_code == 404 and response.headers["Content-Type"].startswith("text/html")
        assert "no such admin page" in response.text and response.headers["X-Frame-Options"] == "DENY"
    response = logged_in(admin).get(admin + "/admin/logout", timeout=10)
    assert response.status_code == 405 and response.headers["Content-Type"].startswith("text/html")
    assert "405 Method Not Allowed" in response.text and "POST" in response.headers["Allow"]
    api = requests.get(admin + "/v1/no-such-route", timeout=10)  # the API keeps its JSON errors
    assert api.status_code == 404 and api.json()["error"] == "Not Found"


def test_overview_counts_webhook_attempts_of_the_last_hour(admin, conn, spawn, env):
    from support.receiver import Receiver
    from support.servers import wait_for
    from support.webhooks import emit_many, enable_webhooks

    with Receiver(respond=lambda request: 500 if request.json["data"]["n"] == 0 else 200) as receiver:
        enable_webhooks(conn, receiver.url)
        spawn("workers.webhooks", {**env, "WEBHOOK_ATTEMPTS": "1"})
        emit_many(conn, 3)
        wait_for(lambda: len(receiver.requests) == 3, what="three deliveries")
    session = logged_in(admin)

    def counted():
        page = session.get(admin + "/admin/", timeout=10).text
        figures = {name: re.search(rf'id="webhooks-{name}">(\d+)<', page).group(1)
                   for name in ("success", "fail")}
        return figures == {"success": "2", "fail": "1"}

    wait_for(counted, what="2 successes and 1 failure on the overview")


def test_attempt_counts_leave_the_window_after_an_hour(conn):
    from shared.stores import webhook_stats

    keys, now = Keys(), 1_800_000_000.0
    pipe = conn.pipeline()
    webhook_stats.record(pipe, keys, True, now - 3600)  # 60 minutes ago: outside
    webhook_stats.record(pipe, keys, False, now - 3540)  # 59 minutes ago: inside
    webhook_stats.record(pipe, keys, True, now)
    webhook_stats.record(pipe, keys, True, now)
    pipe.execute()
    assert webhook_stats.last_hour(conn, keys, now) == {"success": 2, "fail": 1}
    assert 0 < conn.ttl(keys.webhook_attempts(int(now // 60))) <= webhook_stats.KEEP_SECONDS
