"""The baseline of bench/webhooks.py: one webhook delivery as a plain rq job function.

rq's SimpleWorker runs it one job at a time. It does the same HTTP work as mailpulse's worker
(signed JSON POST over a kept-alive connection, non-2xx raises) and nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import urllib3

_pool = urllib3.PoolManager(maxsize=1, retries=False)


def deliver(url: str, secret: str, payload: dict, event_id: str) -> int:
    body = json.dumps(payload, separators=(",", ":")).encode()
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    signature = base64.urlsafe_b64encode(digest).rstrip(b"=")
    response = _pool.request("POST", url, body=body, redirect=False, timeout=30, headers={
        "Content-Type": "application/json", "X-EE-Wh-Event-Id": event_id,
        "X-EE-Wh-Signature": signature.decode()})
    if not 200 <= response.status < 300:
        raise RuntimeError(f"HTTP {response.status}")
    return response.status
