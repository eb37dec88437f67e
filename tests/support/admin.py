"""Helpers for admin page tests: set the password, log in with a real HTTP session, read forms."""

from __future__ import annotations

import re

import redis
import requests

from shared.keys import Keys
from shared.stores.admin_password import AdminPassword

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def set_password(conn: redis.Redis, password: str = PASSWORD) -> None:
    AdminPassword(conn, Keys()).set(password)


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match and match.group(1), "no CSRF token in the page"
    return match.group(1)


def login(base_url: str, password: str = PASSWORD) -> tuple[requests.Session, requests.Response]:
    """A session after submitting the login form; the response is the login POST's (no redirects)."""
    session = requests.Session()
    form = session.get(base_url + "/admin/login", timeout=10)
    response = session.post(base_url + "/admin/login", timeout=10, allow_redirects=False,
                            data={"password": password, "csrf_token": csrf_of(form.text), "next": "/admin/"})
    return session, response


def logged_in(base_url: str) -> requests.Session:
    session, response = login(base_url)
    assert response.status_code == 302, response.text
    return session


def post_form(session: requests.Session, base_url: str, page: str, action: str, data: dict, **kwargs):
    """Submit a form of `page` to `action` with that page's CSRF token."""
    token = csrf_of(session.get(base_url + page, timeout=10).text)
    return session.post(base_url + action, data={**data, "csrf_token": token}, timeout=10, **kwargs)
