"""Odd input to every admin form and query parameter: a 400 page naming the field, never a 500.

Real web process and real Redis; the bodies are sent as raw bytes where they must not be UTF-8.
"""

from __future__ import annotations

import pytest
import requests

from shared.keys import Keys
from shared.stores.tokens import TokenStore
from support.admin import csrf_of, logged_in, login, post_form

FORM_TYPE = {"Content-Type": "application/x-www-form-urlencoded"}
IMAP = {"name": "Alice", "imap_host": "imap.example.com", "imap_user": "alice", "imap_pass": "pw"}




def post_raw(session, base_url: str, page: str, action: str, body: bytes):
    """POST a urlencoded body of raw bytes (e.g. %ff, not UTF-8) with the page's CSRF token."""
    token = csrf_of(session.get(base_url + page, timeout=10).text)
    return session.post(base_url + action, data=b"csrf_token=" + token.encode() + b"&" + body,
                        headers=FORM_TYPE, timeout=10)


@pytest.mark.parametrize("page", ["\u00b2", "9" * 5000, "-1", "%ff", "\uff11"])
def test_odd_page_numbers_show_the_first_page(admin, account_store, page):
    account_store.create({"account": "alice", "name": "Alice"})
    response = logged_in(admin).get(admin + "/admin/accounts", params={"page": page}, timeout=10)
    assert response.status_code == 200 and 'data-account="alice"' in response.text


@pytest.mark.parametrize("port", ["\u00b2", "\uff19\uff19\uff13", "9" * 5000, "abc", "0", "65536", " "])
def test_odd_imap_ports_name_the_field(admin, account_store, port):
    session = logged_in(admin)
    page = post_form(session, admin, "/admin/accounts", "/admin/accounts", dict(IMAP, imap_port=port))
    assert page.status_code == 400 and 'data-field="imap.port"' in page.text
    assert "must be a port number" in page.text and account_store.list()["total"] == 0


def test_a_port_with_spaces_around_it_is_taken(admin, account_store):
    session = logged_in(admin)
    page = post_form(session, admin, "/admin/accounts", "/admin/accounts",
                     dict(IMAP, account="alice", imap_port=" 993 "))
    assert page.status_code == 200 and account_store.get("alice")["imap"]["port"] == 993


def test_missing_and_oversized_account_fields_name_the_fields(admin, account_store):
    session = logged_in(admin)
    empty = post_form(session, admin, "/admin/accounts", "/admin/accounts", {})
    assert empty.status_code == 400 and 'data-field="name"' in empty.text
    huge = post_form(session, admin, "/admin/accounts", "/admin/accounts",
                     dict(IMAP, account="a" * 10_000, imap_port="993", imap_user="u" * 100_000))
    assert huge.status_code == 400
    assert 'data-field="account"' in huge.text and 'data-field="imap.auth.user"' in huge.text
    assert account_store.list()["total"] == 0


def test_non_utf8_account_form(admin, account_store):
    session = logged_in(admin)
    page = post_raw(session, admin, "/admin/accounts", "/admin/accounts",
                    b"account=%ff%fe&name=%ff&imap_host=%c3&imap_port=%ff&imap_user=u&imap_pass=p")
    assert page.status_code == 400
    assert 'data-field="account"' in page.text and 'data-field="imap.port"' in page.text
    assert account_store.list()["total"] == 0


@pytest.mark.parametrize("account_id", ["%ff", "a" * 5000, "..", "x%20y"])
def test_actions_on_odd_account_ids_are_404_pages(admin, account_id):
    session = logged_in(admin)
    for action in ("delete", "reconnect"):
        page = post_form(session, admin, "/admin/accounts", f"/admin/accounts/{account_id}/{action}", {})
        assert page.status_code == 404 and page.headers["Content-Type"].startswith("text/html")


def test_token_form_odd_input(admin, conn):
    session = logged_in(admin)
    long = post_form(session, admin, "/admin/tokens", "/admin/tokens", {"description": "x" * 10_000,
                                                                        "scope_all": "1"})
    assert long.status_code == 400 and 'data-field="description"' in long.text
    assert "Description: at most 200 characters" in long.text
    bad_utf8 = post_raw(session, admin, "/admin/tokens", "/admin/tokens", b"description=%ff%fe&scope_x=%ff")
    assert bad_utf8.status_code == 400 and 'data-field="scopes"' in bad_utf8.text
    assert TokenStore(conn, Keys()).list() == []
    for token_id in ("%ff", "z" * 5000):
        page = post_form(session, admin, "/admin/tokens", f"/admin/tokens/{token_id}/revoke", {})
        assert page.status_code == 404 and page.headers["Content-Type"].startswith("text/html")


def test_webhook_form_odd_input(admin):
    session = logged_in(admin)
    bad_utf8 = post_raw(session, admin, "/admin/webhooks", "/admin/webhooks", b"webhooks=%ff%fe&event_all=1")
    assert bad_utf8.status_code == 400 and 'data-field="webhooks"' in bad_utf8.text
    long = post_form(session, admin, "/admin/webhooks", "/admin/webhooks",
                     {"webhooks": "https://example.com/" + "x" * 100_000, "event_all": "1"})
    assert long.status_code == 400 and 'data-field="webhooks"' in long.text
    unknown = post_raw(session, admin, "/admin/webhooks", "/admin/webhooks", b"webhooks=&event=%ff")
    assert unknown.status_code == 400 and 'data-field="webhookEvents"' in unknown.text


@pytest.mark.parametrize("query", ["?account=%ff&done=%ff", "?page=%ff"])
def test_odd_query_strings(admin, query):
    session = logged_in(admin)
    for page in ("/admin/accounts", "/admin/tokens?revoked=%ff", "/admin/webhooks?test_job=%ff&saved=%ff"):
        assert session.get(admin + page + (query if "?" not in page else ""), timeout=10).status_code == 200


def test_login_with_odd_passwords_is_a_failed_login(admin, conn):
    for password in ("x" * 200_000, "\u00b2" * 2000):
        _, response = login(admin, password)
        assert response.status_code == 401 and "Wrong password" in response.text
    session = requests.Session()
    form = session.get(admin + "/admin/login", timeout=10)
    response = session.post(admin + "/admin/login", headers=FORM_TYPE, allow_redirects=False, timeout=10,
                            data=b"csrf_token=" + csrf_of(form.text).encode() + b"&password=%ff&next=%ff")
    assert response.status_code == 401
    assert int(conn.get(Keys().admin_login_failures("127.0.0.1"))) == 3  # each one counted


def test_oversized_bodies_are_refused_before_they_are_read(admin, conn):
    body = {"password": "x" * 300 * 1024}
    anonymous = requests.post(admin + "/admin/login", data=body, timeout=10)
    assert anonymous.status_code == 413 and anonymous.headers["Content-Type"].startswith("text/html")
    assert "413 Request Entity Too Large" in anonymous.text
    assert conn.get(Keys().admin_login_failures("127.0.0.1")) is None
    session = logged_in(admin)
    page = post_form(session, admin, "/admin/tokens", "/admin/tokens", {"description": "x" * 300 * 1024})
    assert page.status_code == 413 and TokenStore(conn, Keys()).list() == []
