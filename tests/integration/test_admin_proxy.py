"""The web process behind a TLS-terminating reverse proxy (TRUSTED_PROXY), on a real process.

The test plays the proxy: it connects from 127.0.0.1 over plain http and sends the
X-Forwarded-Proto/-For headers a proxy adds. With TRUSTED_PROXY=127.0.0.1 they count (Secure
cookies, same-origin checks against https://, the login throttle per client); without the
setting they are ignored (and removed), so a client cannot claim another address or https.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests
from rq import Queue

from shared.keys import Keys
from support.admin import PASSWORD, csrf_of, set_password
from support.servers import ROOT, base_env, start_web

HTTPS = {"X-Forwarded-Proto": "https"}


class ProxyHop:
    """Requests as the proxy forwards them: plain http, the proxy's headers, and every cookie
    the server set, Secure ones included (requests would keep those for https URLs only)."""

    def __init__(self, headers: dict):
        self.headers = headers
        self.cookies: dict[str, str] = {}

    def request(self, method: str, url: str, headers: dict | None = None, **kwargs):
        cookie = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        headers = {**self.headers, "Cookie": cookie, **(headers or {})}
        response = requests.request(method, url, headers=headers, timeout=10, allow_redirects=False, **kwargs)
        for header in response.raw.headers.getlist("Set-Cookie"):
            name, _, rest = header.partition("=")
            value = rest.split(";")[0]
            if value:
                self.cookies[name] = value
            else:
                self.cookies.pop(name, None)
        return response

    def get(self, url: str, **kwargs):
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs):
        return self.request("POST", url, **kwargs)


def cookie_flags(response, name: str) -> set[str]:
    cookie = [c for c in response.raw.headers.getlist("Set-Cookie") if c.startswith(name + "=")][0]
    return {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}


def login(base_url: str, headers: dict, password: str = PASSWORD):
    """(session, login form response, login POST response) with the proxy's headers on both."""
    session = ProxyHop(headers)
    form = session.get(base_url + "/admin/login")
    response = session.post(base_url + "/admin/login",
                            data={"password": password, "csrf_token": csrf_of(form.text), "next": "/admin/"})
    return session, form, response


@pytest.fixture
def proxied(spawn, env, conn):
    set_password(conn)
    return start_web(spawn, {**env, "TRUSTED_PROXY": "127.0.0.1"}).url


@pytest.fixture
def direct(spawn, env, conn):
    set_password(conn)
    return start_web(spawn, env).url


def empty_notify(session, base_url: str, origin: str):
    return session.post(base_url + "/admin/rq/queue/notify/queued/empty", headers={"Origin": origin})


def test_behind_the_proxy_cookies_are_secure_and_https_origins_match(proxied, conn):
    session, form, response = login(proxied, HTTPS)
    assert "secure" in cookie_flags(form, "mailpulse_admin_login")
    assert response.status_code == 302 and "secure" in cookie_flags(response, "mailpulse_admin")
    queue = Queue("notify", connection=conn)
    queue.enqueue("os.getcwd")
    https_origin = proxied.replace("http://", "https://")
    assert empty_notify(session, proxied, proxied).status_code == 403  # the browser saw https
    assert queue.count == 1
    assert empty_notify(session, proxied, https_origin).status_code == 200 and queue.count == 0


def test_behind_the_proxy_the_throttle_counts_per_forwarded_client(proxied, conn):
    guesser = {**HTTPS, "X-Forwarded-For": "203.0.113.7"}
    for _ in range(10):
        assert login(proxied, guesser, "wrong password")[2].status_code == 401
    assert login(proxied, guesser)[2].status_code == 429
    assert int(conn.get(Keys().admin_login_failures("203.0.113.7"))) == 10
    assert conn.get(Keys().admin_login_failures("127.0.0.1")) is None
    admin = {**HTTPS, "X-Forwarded-For": "198.51.100.20"}  # another client behind the same proxy
    assert login(proxied, admin)[2].status_code == 302


def test_without_the_setting_proxy_headers_are_ignored(direct, conn):
    session, form, response = login(direct, HTTPS)
    assert response.status_code == 302 and "secure" not in cookie_flags(response, "mailpulse_admin")
    Queue("notify", connection=conn).enqueue("os.getcwd")
    assert empty_notify(session, direct, direct.replace("http://", "https://")).status_code == 403
    for n in range(10):  # a client cannot pick a new address per guess
        spoofed = {"X-Forwarded-For": f"198.51.100.{n}"}
        assert login(direct, spoofed, "wrong password")[2].status_code == 401
    assert login(direct, {"X-Forwarded-For": "198.51.100.99"})[2].status_code == 429
    assert int(conn.get(Keys().admin_login_failures("127.0.0.1"))) == 10


@pytest.mark.parametrize("setting, value", [("TRUSTED_PROXY", "proxy.example"),
                                            ("TRUSTED_PROXY_HEADERS", "x-real-ip"),
                                            ("TRUSTED_PROXY_HEADERS", "forwarded,x-forwarded-for")])
def test_bad_proxy_settings_are_one_line_errors(redis_url, tmp_path, setting, value):
    env = base_env(redis_url, tmp_path, **{"TRUSTED_PROXY": "127.0.0.1", setting: value})
    result = subprocess.run([sys.executable, "-m", "web"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert f"configuration error: {setting}:" in result.stderr
