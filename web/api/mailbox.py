"""The mailbox API (EmailEngine's routes and shapes): mailboxes, messages, a message, its text,
attachments and source; flags, move, delete; search. Each call is served by the IMAP process
that holds the account (shared/mail/mailbox_client.py); here only the input is checked."""

from __future__ import annotations

import re

from flask import Response, current_app, jsonify, request, stream_with_context

from shared.errors import InputError
from shared.mail import message_ids
from shared.mail.mailbox_client import ChannelError, MailboxChannel, Reply

from ..auth import error_response
from . import blueprint
from .accounts import _int_arg
from .mailbox_search import search_criteria

MAX_PAGE_SIZE = 250
TEXT_TYPES = ("plain", "html", "*")
MAX_PATH = 1000
_FLAG = re.compile(r"^\\?[A-Za-z0-9$_.\-]{1,100}$")  # an atom, optionally a system flag
ERRORS = {400: "Bad Request", 404: "Not Found", 409: "Conflict", 500: "Internal Server Error",
          502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


def _channel() -> MailboxChannel:
    return current_app.config["MAILBOX_CHANNEL"]


def _answer(reply: Reply):
    if reply.text is not None:  # the JSON text as the client gets it: not decoded, not re-encoded
        return Response(reply.text, status=reply.status, mimetype="application/json")
    if reply.status >= 400:
        body = reply.body or {}
        extra = {"fields": body["fields"]} if body.get("fields") else None
        return error_response(reply.status, ERRORS.get(reply.status, "Error"), body.get("message", ""), extra)
    response = jsonify(reply.body)
    response.status_code = reply.status
    return response


def _call(account: str, op: str, params: dict):
    try:
        return _answer(_channel().call(account, op, params))
    except ChannelError as exc:
        return error_response(exc.status, exc.error, str(exc))


def _stream(account: str, op: str, params: dict):
    try:
        reply = _channel().stream(account, op, params)
    except ChannelError as exc:
        return error_response(exc.status, exc.error, str(exc))
    if reply.chunks is None:
        return _answer(reply)
    return Response(stream_with_context(reply.chunks), status=reply.status, headers=reply.headers,
                    direct_passthrough=True)


# -- input ------------------------------------------------------------------------------------
def _path_arg(required: bool = False) -> str:
    path = request.args.get("path")
    if path is None:
        if required:
            raise InputError({"path": "is required (a mailbox path such as INBOX)"})
        return "INBOX"
    if not path or len(path) > MAX_PATH or any(ord(c) < 32 for c in path):
        raise InputError({"path": f"must be a mailbox path (1 to {MAX_PATH} characters, no controls)"})
    return path


def _text_type() -> str | None:
    text_type = request.args.get("textType")
    if text_type is not None and text_type not in TEXT_TYPES:
        raise InputError({"textType": "must be plain, html or *"})
    return text_type


def _message(message: str) -> dict:
    try:
        path, uidvalidity, uid = message_ids.parse_message_id(message)
    except message_ids.MalformedId:
        raise InputError({"message": "is not a message id"}) from None
    return {"id": message, "path": path, "uidvalidity": uidvalidity, "uid": uid}


def _flags(body: dict) -> dict:
    flags = body.get("flags")
    if not isinstance(flags, dict) or not flags or set(flags) - {"add", "delete", "set"}:
        raise InputError({"flags": "must be an object with add, delete and/or set (lists of flags)"})
    for name, value in flags.items():
        if not (isinstance(value, list) and len(value) <= 100
                and all(isinstance(f, str) and _FLAG.match(f) for f in value)):
            raise InputError({f"flags.{name}": "must be a list of flags (such as \\Seen or $Label)"})
    return flags


def _json_body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InputError({"body": "must be a JSON object"})
    return body


def _paging() -> dict:
    return {"page": _int_arg("page", 0, 0, 1_000_000), "pageSize": _int_arg("pageSize", 20, 1, MAX_PAGE_SIZE)}


# -- routes -----------------------------------------------------------------------------------
@blueprint.get("/account/<account>/mailboxes")
def list_mailboxes(account: str):
    return _call(account, "mailboxes", {})


@blueprint.get("/account/<account>/messages")
def list_messages(account: str):
    return _call(account, "messages", {"path": _path_arg(), **_paging()})


@blueprint.get("/account/<account>/message/<message>")
def get_message(account: str, message: str):
    return _call(account, "message", {**_message(message), "textType": _text_type()})


@blueprint.get("/account/<account>/message/<message>/source")
def get_source(account: str, message: str):
    return _stream(account, "source", _message(message))


@blueprint.get("/account/<account>/text/<text>")
def get_text(account: str, text: str):
    try:
        path, uidvalidity, uid, plain, html = message_ids.parse_text_id(text)
    except message_ids.MalformedId:
        raise InputError({"text": "is not a text id"}) from None
    return _call(account, "text", {"id": text, "path": path, "uidvalidity": uidvalidity, "uid": uid,
                                   "plain": plain, "html": html, "textType": _text_type() or "*"})


@blueprint.get("/account/<account>/attachment/<attachment>")
def get_attachment(account: str, attachment: str):
    try:
        path, uidvalidity, uid, section = message_ids.parse_attachment_id(attachment)
    except message_ids.MalformedId:
        raise InputError({"attachment": "is not an attachment id"}) from None
    return _stream(account, "attachment", {"id": attachment, "path": path, "uidvalidity": uidvalidity,
                                           "uid": uid, "section": section})


@blueprint.put("/account/<account>/message/<message>")
def update_message(account: str, message: str):
    return _call(account, "flags", {**_message(message), "flags": _flags(_json_body())})


@blueprint.put("/account/<account>/message/<message>/move")
def move_message(account: str, message: str):
    target = _json_body().get("path")
    if not isinstance(target, str) or not target or len(target) > MAX_PATH:
        raise InputError({"path": "must be the path of the mailbox to move the message to"})
    return _call(account, "move", {**_message(message), "target": target})


@blueprint.delete("/account/<account>/message/<message>")
def delete_message(account: str, message: str):
    force = request.args.get("force", "false")
    if force not in ("true", "false"):
        raise InputError({"force": "must be true or false"})
    return _call(account, "delete", {**_message(message), "force": force == "true"})


@blueprint.post("/account/<account>/search")
def search_messages(account: str):
    body = _json_body()
    criteria = search_criteria(body.get("search"))
    return _call(account, "search", {"path": _path_arg(), **_paging(), "criteria": criteria})
