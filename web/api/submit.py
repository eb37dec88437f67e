"""Sending (EmailEngine's shapes): POST /v1/account/{account}/submit and the outbox.

The message is validated (shared/mail/submission.py), completed from the message it replies to or
forwards (submit_reference.py), built once as MIME (shared/mail/outgoing.py) and queued on `submit`
(shared/mail/submit_queue.py); the submit workers send it.
"""

from __future__ import annotations

from flask import current_app, jsonify, request

from shared.errors import InputError
from shared.mail import outgoing, submission
from shared.mail.submit_queue import CANCELLED, DONE, SENDING, SubmitQueue, iso

from ..auth import error_response
from . import blueprint, submit_reference
from .accounts import _int_arg, _not_found, _store
from .submit_reference import Referenced

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
    sender = outgoing.sender_of(message, found["email"], found["name"])
    if not sender.address:
        raise InputError({"from": "is required: the account has no email address"})
    referenced = Referenced({}, None, None)
    if message.reference is not None:
        try:
            referenced = submit_reference.apply(current_app.config["MAILBOX_CHANNEL"], account, message,
                                                max_size, frozenset({found["email"] or "", sender.address}))
        except submit_reference.ReferenceMissing as exc:
            return error_response(404, "Not Found", str(exc),
                                  {"fields": {"reference.message": "no such message"}})
        except submit_reference.ReferenceUnavailable as exc:
            return error_response(exc.status, exc.error, exc.message)
    mime = outgoing.build(message, sender, referenced.headers, forwarded=referenced.forwarded)
    raw = mime.as_bytes()
    if len(raw) > max_size:
        too_big = ("attachments" if message.attachments
                   else "reference.message" if referenced.forwarded else "text")
        raise InputError({too_big:
                          f"the message is larger than the limit of {max_size} bytes (SUBMIT_MAX_SIZE)"})
    summary = {"messageId": mime["Message-ID"], "subject": message.subject,
               "to": [a.as_dict() for a in message.to + message.cc]}  # bcc stays out of the outbox
    queue_id, due = _queue().enqueue(account, raw, sender.address, message.recipients, summary,
                                     message.send_at, message.copy, referenced.answers)
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
