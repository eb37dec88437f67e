"""Sending (EmailEngine's shapes): POST /v1/account/{account}/submit and the outbox.

The message is validated (shared/submission.py), built once as MIME (shared/outgoing.py) and
queued on `submit` (shared/submit_queue.py); the submit workers send it.
"""

from __future__ import annotations

from flask import current_app, jsonify, request

from shared import outgoing, submission
from shared.errors import InputError
from shared.submit_queue import CANCELLED, DONE, SENDING, SubmitQueue, iso

from ..auth import error_response
from . import blueprint
from .accounts import _int_arg, _not_found, _store

MAX_PAGE_SIZE = 250


def _queue() -> SubmitQueue:
    return current_app.config["SUBMIT_QUEUE"]


@blueprint.post("/account/<account>/submit")
def submit(account: str):
    store = _store()
    found = store.get(account)
    if not found:
        return _not_found(account)
    if not found.get("smtp"):
        raise InputError({"smtp": "the account has no SMTP settings; "
                                  "set them with PUT /v1/account/{account}"})
    max_size = current_app.config["MAILPULSE"].SUBMIT_MAX_SIZE
    message = submission.parse(request.get_json(silent=True), max_size)
    if message.reference is not None:
        # Message ids come with the mailbox API (issue 14); until then a reference cannot be found.
        raise InputError({"reference": "replies and forwards by reference are not supported yet"})
    sender = outgoing.sender_of(message, found["email"], found["name"])
    if not sender.address:
        raise InputError({"from": "is required: the account has no email address"})
    mime = outgoing.build(message, sender)
    raw = mime.as_bytes()
    if len(raw) > max_size:
        raise InputError({"attachments" if message.attachments else "text":
                          f"the message is larger than the limit of {max_size} bytes (SUBMIT_MAX_SIZE)"})
    summary = {"messageId": mime["Message-ID"], "subject": message.subject,
               "to": [a.as_dict() for a in message.to + message.cc]}  # bcc stays out of the outbox
    queue_id, due = _queue().enqueue(account, raw, sender.address, message.recipients, summary,
                                     message.send_at, message.copy)
    return jsonify({"response": "Queued for delivery", "messageId": mime["Message-ID"], "sendAt": iso(due),
                    "queueId": queue_id})


@blueprint.get("/outbox")
def list_outbox():
    page = _int_arg("page", 0, 0, 1_000_000)
    page_size = _int_arg("pageSize", 20, 1, MAX_PAGE_SIZE)
    return jsonify(_queue().list(page, page_size))


def _no_message(queue_id: str):
    return error_response(404, "Not Found", f"queueId {queue_id!r}: no such message in the outbox")


@blueprint.get("/outbox/<queueId>")
def get_outbox_entry(queueId: str):  # noqa: N803 - the route label names it so
    queue_id = queueId
    entry = _queue().get(queue_id)
    return jsonify(entry) if entry else _no_message(queue_id)


@blueprint.delete("/outbox/<queueId>")
def cancel_outbox_entry(queueId: str):  # noqa: N803
    queue_id = queueId
    result = _queue().cancel(queue_id)
    if result == CANCELLED:
        return jsonify({"deleted": True, "queueId": queue_id})
    if result == SENDING:
        return error_response(409, "Conflict",
                              f"queueId {queue_id!r}: being sent now; it cannot be cancelled")
    if result == DONE:
        return error_response(409, "Conflict", f"queueId {queue_id!r}: already sent or failed")
    return _no_message(queue_id)
