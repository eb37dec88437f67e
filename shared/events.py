"""The one way to emit an event: count it, build the webhook payload, enqueue its delivery.

Emitting never waits on a delivery: the payload goes to the rq queue `notify`, where the webhook
workers pick it up. Every producer (IMAP workers, the API) calls `emit`.
"""

from __future__ import annotations

import datetime
import uuid

import redis
from rq import Queue

from . import webhook_target
from .event_names import EVENTS
from .keys import Keys
from .metrics import definitions as metrics

DELIVER = "workers.webhooks.delivery.deliver"  # the job function, imported by the worker only


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_payload(event: str, account: str | None, data: dict | None, path: str | None = None,
                  special_use: str | None = None, service_url: str = "") -> dict:
    payload = {"serviceUrl": service_url, "account": account, "date": now_iso()}
    if path is not None:
        payload["path"] = path
    if special_use is not None:
        payload["specialUse"] = special_use
    payload.update(event=event, data=data if data is not None else {})
    return payload


def emit(conn: redis.Redis, keys: Keys, event: str, account: str | None = None, data: dict | None = None,
         path: str | None = None, special_use: str | None = None, service_url: str = "",
         target: webhook_target.Target | None = None) -> str:
    """Count and enqueue one event; returns the rq job id. Raises redis errors to the caller.

    The webhook target is fixed here (shared.webhook_target) and stored in the job's hash in the
    same transaction as the enqueue, so no webhooks process ever sees the job without it."""
    target = target or webhook_target.resolve(conn, keys, account)
    with conn.pipeline() as pipe:
        job_id = add_to(conn, pipe, keys, event, target, account, data, path, special_use, service_url)
        pipe.execute()
    counted(event)
    return job_id


def add_to(conn: redis.Redis, pipe, keys: Keys, event: str, target: webhook_target.Target,
           account: str | None = None, data: dict | None = None, path: str | None = None,
           special_use: str | None = None, service_url: str = "") -> str:
    """Enqueue one event on the caller's transaction `pipe`, to commit with what the caller records
    there (the submit worker: a send's outcome and its event, both or neither). The caller calls
    `counted(event)` once the transaction ran. Returns the rq job id."""
    if event not in EVENTS:
        raise ValueError(f"unknown event {event!r}")
    payload = build_payload(event, account, data, path, special_use, service_url)
    event_id = uuid.uuid4().hex
    job = Queue(keys.queue("notify"), connection=conn).enqueue(
        DELIVER, payload, event_id, meta={"event": event, "eventId": event_id},
        description=f"{event} {account or '-'}",  # rq's default repeats the payload in every job
        pipeline=pipe)
    pipe.hset(job.key, mapping=target.fields())
    return job.id


def counted(event: str) -> None:
    metrics.safely(metrics.events.labels(event=event).inc)


def emit_test(conn: redis.Redis, keys: Keys) -> str:
    """The `test` event behind "Send test webhook" (API and admin page); returns the job id."""
    return emit(conn, keys, "test", data={"message": "test webhook from mailpulse"})


def emit_account_event(conn: redis.Redis, keys: Keys, event: str, account: dict) -> str:
    """accountAdded / accountDeleted for an account's public view (API and admin page)."""
    # The target from the record the caller holds: for accountDeleted the record is gone already.
    target = webhook_target.resolve(conn, keys, account["account"], account.get("webhooks"))
    return emit(conn, keys, event, account=account["account"],
                data={"account": account["account"], "name": account["name"], "email": account["email"]},
                target=target)
