"""One delivery attempt of one event: pick the target, sign, POST, classify, count.

Knows nothing about rq: the worker loop (worker.py) and the job bookkeeping (jobs.py) turn the
Outcome into registry moves. Outcome kinds, by what the caller does:
  delivered  -> finished;  skipped -> finished with no HTTP call (filtered out);
  retry      -> try again later (non-2xx, 3xx included, network error, timeout);
  give_up    -> failed at once (egress policy: retrying cannot help).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from shared.metrics import definitions as metrics

from .client import TransportError, WebhookClient
from .egress import EgressRefused
from .signing import sign
from .untrusted import printable, without_userinfo

DELIVERED, SKIPPED, RETRY, GIVE_UP = "delivered", "skipped", "retry", "give_up"


@dataclass(frozen=True)
class Outcome:
    kind: str
    message: str = ""
    url: str = ""
    status_code: int | None = None


@dataclass(frozen=True)
class Attempt:
    """What one attempt needs to know about its job."""

    job_id: str
    event_id: str
    payload: dict
    enqueued_at: float  # unix time the event was queued
    attempts_made: int  # attempts before this one (0 on the first, as EmailEngine sends it)

    @property
    def event(self) -> str:
        return str(self.payload.get("event", ""))


def target_url(settings: dict, stored_url: str | None, account_url: str | None, event: str) -> str | None:
    """The URL to POST to, or None when the event is filtered out.

    `stored_url` is the target fixed when the event was emitted (shared.webhook_target; "" =
    nobody); only jobs queued before targets were stored (None) look the URL up now. The switch
    and the event filter apply at delivery time: turning webhooks off stops queued deliveries.
    """
    if not settings.get("webhooksEnabled"):
        return None
    events = settings.get("webhookEvents") or ["*"]
    if "*" not in events and event not in events:
        return None
    if stored_url is not None:
        return stored_url or None
    return account_url or settings.get("webhooks") or None


def attempt(client: WebhookClient, secret: str, job: Attempt, url: str | None) -> Outcome:
    if url is None:
        return Outcome(SKIPPED, "filtered out: webhooks disabled, no URL, or event not selected")
    body = json.dumps(job.payload, separators=(",", ":")).encode()
    headers = {
        "X-EE-Wh-Id": job.job_id,
        "X-EE-Wh-Attempts-Made": str(job.attempts_made),
        "X-EE-Wh-Queued-Time": f"{max(0.0, time.time() - job.enqueued_at):.3f}",
        "X-EE-Wh-Event-Id": job.event_id,
        "X-EE-Wh-Signature": sign(secret, body),
    }
    started = time.perf_counter()
    timed = True
    shown_url = without_userinfo(url)  # what errors and pages may show: no credentials
    try:
        answer = client.post(url, body, headers)
    except EgressRefused as exc:
        timed = False  # no request was made
        outcome = Outcome(GIVE_UP, printable(f"refused by egress policy: {exc}"), shown_url)
    except TransportError as exc:
        outcome = Outcome(RETRY, printable(without_userinfo(str(exc))), shown_url)
    else:
        status = answer.status
        if 200 <= status < 300:
            outcome = Outcome(DELIVERED, f"HTTP {status}", shown_url, status)
        else:
            # The receiver's own words help its operator; they are untrusted: bounded, printable.
            said = f" {answer.reason}" if answer.reason else ""
            said += f": {answer.body}" if answer.body.strip() else ""
            outcome = Outcome(RETRY, printable(f"HTTP {status} (not 2xx){said}"), shown_url, status)
    if timed:
        metrics.safely(metrics.webhook_req.observe, (time.perf_counter() - started) * 1000)
    status_label = "success" if outcome.kind == DELIVERED else "fail"
    metrics.safely(metrics.webhooks.labels(status=status_label, event=job.event).inc)
    return outcome


def deliver(payload: dict, event_id: str):
    """The job function rq records for every event (shared.events.DELIVER).

    The webhooks worker runs attempts itself (worker.py) and never calls this. A plain `rq worker`
    pointed at the queue would: it fails loudly so that such a job stays visible in the failed
    registry instead of being marked finished without a delivery.
    """
    raise RuntimeError("webhook jobs are delivered by `python -m workers.webhooks`, not a plain rq worker")
