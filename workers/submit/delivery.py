"""One send attempt of one queued message: the account's SMTP settings, the send, the events.

Knows nothing about rq (jobs.py records the outcome). Events, as EmailEngine names them:
messageSent (accepted by the server, with its reply), messageDeliveryError (each failed attempt,
with the SMTP code and text), messageFailed (no attempt left, or a 5xx).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from shared.stores.accounts import AccountStore
from shared.stores.credentials import CredentialsUnreadable

from .jobs import FAILED, RETRY, SENT, Claim
from .smtp import DeliveryFailure, PermanentFailure, Sent, SmtpPool

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    kind: str  # SENT, RETRY or FAILED
    error: str | None = None
    code: int | None = None
    response: str = ""
    sent: Sent | None = None


def attempt(pool: SmtpPool, accounts: AccountStore, claim: Claim, record: dict) -> Outcome:
    """`record`: the account's hash (AccountStore.record), read once for the send and the copy."""
    account = claim.payload["account"]
    try:
        settings = accounts.smtp_settings(account, record)
    except CredentialsUnreadable as exc:
        return Outcome(FAILED, f"account {account}: {exc}")
    if settings is None:
        return Outcome(FAILED, f"account {account}: no SMTP settings (deleted or changed since queued)")
    envelope = claim.payload["envelope"]
    try:
        sent = pool.send(settings, envelope["from"], envelope["to"], claim.raw)
    except DeliveryFailure as exc:
        kind = FAILED if isinstance(exc, PermanentFailure) else RETRY
        return Outcome(kind, str(exc), exc.code, exc.response)
    return Outcome(SENT, response=sent.response, sent=sent)


def events_of(claim: Claim, outcome: Outcome, status: str, next_attempt: float | None,
              max_attempts: int) -> list[tuple[str, dict]]:
    """The events of an attempt's outcome, after jobs.finish recorded it: messageSent; or
    messageDeliveryError for every failed attempt, followed by messageFailed for the last one."""
    payload = claim.payload
    base = {"queueId": claim.queue_id, "messageId": payload["messageId"], "envelope": payload["envelope"]}
    if outcome.kind == SENT:
        data = dict(base, response=outcome.response)
        if outcome.sent and outcome.sent.rejected:
            data["rejected"] = outcome.sent.rejected
        return [("messageSent", data)]
    error = dict(base, error=outcome.error, smtpResponseCode=outcome.code,
                 smtpResponse=outcome.response or None)
    found = [("messageDeliveryError", dict(error, job={
        "attemptsMade": claim.attempts_made,  # jobs.finish counted this one "attempts": max_attempts,
        "nextAttempt": next_attempt if status == "scheduled" else None}))]
    if status == "failed":
        found.append(("messageFailed", error))
    return found


def deliver(payload: dict):
    """The job function rq records (shared.mail.submit_queue.DELIVER); the submit worker runs attempts
    itself. A plain `rq worker` on the queue fails the job loudly instead of losing the message."""
    raise RuntimeError("submit jobs are sent by `python -m workers.submit`, not a plain rq worker")
