"""Limits at the edge: request bodies bounded by waitress before anything reads them, and a
/health that concurrent checks cannot fail and that names no Redis address to anyone."""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import requests

from shared.keys import Keys
from shared.runtime.heartbeats import Heartbeats
from support.servers import start_web


def raw_request(url: str, head: str, body: bytes = b"") -> bytes:
    """Send `head` (and `body`) on a socket; the first bytes of the answer (the status line)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(head.encode() + body)
        return sock.recv(200)


def test_a_declared_body_over_api_max_body_is_refused_unread(web):
    # Headers only: waitress answers from the Content-Length, without waiting for the 6 MiB.
    head = ("POST /v1/account HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {6 * 1024 * 1024}\r\n\r\n")
    assert raw_request(web.url, head).startswith(b"HTTP/1.1 413 ")


def test_api_max_body_setting(spawn, env):
    env.update(API_MAX_BODY="300KiB")
    web = start_web(spawn, env)
    small = requests.post(web.url + "/v1/account", data=b"x" * 1000, timeout=10)
    assert small.status_code == 401  # read, then refused for want of a token
    large = requests.post(web.url + "/v1/account", data=b"x" * (301 * 1024), timeout=10)
    assert large.status_code == 413
    chunked = requests.post(web.url + "/v1/account", data=iter([b"x" * 65536] * 6), timeout=10)
    assert chunked.status_code == 413  # no Content-Length: counted as it arrives
    admin = requests.post(web.url + "/admin/login", data={"password": "x" * (260 * 1024)}, timeout=10)
    assert admin.status_code == 413  # the admin pages keep their own, smaller, bound


def keep_beating(beats: Heartbeats, ids: list[str], stop: threading.Event) -> None:
    while not stop.wait(0.2):
        for wid in ids:
            kind = wid.rsplit(":", 1)[1]
            beats.beat(wid, json.dumps({"type": kind, "host": "h", "pid": 1, "started": time.time()}))


def test_concurrent_health_checks_do_not_fail_each_other(web, conn):
    beats = Heartbeats(conn, Keys())  # an imap and a webhooks worker, alive: what /health looks for
    ids = [beats.register(kind, 10_000 + i, time.time()) for i, kind in enumerate(("imap", "webhooks"))]
    stop = threading.Event()
    threading.Thread(target=keep_beating, args=(beats, ids, stop), daemon=True).start()
    session = requests.Session()  # 16 kept-alive connections, as a load balancer's checks
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=16))
    try:
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda _: session.get(web.url + "/health", timeout=30), range(300)))
    finally:
        stop.set()
        session.close()
    problems = [a.json().get("problems") for a in answers if a.status_code != 200]
    assert problems == []
    assert not conn.keys("mp:health-probe*")  # each check cleans up its own probe


def test_health_names_no_redis_address(web, redis_server):
    redis_server.stop()
    try:
        answer = requests.get(web.url + "/health", timeout=30)
    finally:
        redis_server.start()
    assert answer.status_code == 503 and answer.json()["problems"] == ["Redis unavailable (connection)"]
    assert str(redis_server.port) not in answer.text and "127.0.0.1" not in answer.text
