"""The REST API under /v1: token auth (`api` scope), JSON errors, and the api_call counter."""

from __future__ import annotations

import re

from flask import Blueprint, Flask, request
from werkzeug.exceptions import HTTPException

from shared.errors import InputError
from shared.metrics import definitions as metrics

from ..auth import error_response, require_scope

blueprint = Blueprint("api", __name__, url_prefix="/v1")
UNKNOWN_ROUTE = "unknown"  # every path that matches no route: keeps the label bounded
# Any method a client sends is counted, even unauthenticated on an unknown route: keep it bounded.
METHODS = frozenset({"get", "post", "put", "delete", "patch", "head", "options"})
_CONVERTER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def route_template(rule) -> str:
    """`/v1/account/<account>` -> `/v1/account/{account}` (the contract's route label)."""
    return _CONVERTER.sub(r"{\1}", rule.rule) if rule is not None else UNKNOWN_ROUTE


@blueprint.before_request
def authenticate():
    _, denied = require_scope("api")
    return denied


def count_api_call(response):
    if request.path == "/v1" or request.path.startswith("/v1/"):
        method = request.method.lower()
        metrics.safely(metrics.api_call.labels(method=method if method in METHODS else "other",
                                               statusCode=str(response.status_code),
                                               route=route_template(request.url_rule)).inc)
    return response


def json_http_error(exc: HTTPException):
    return error_response(exc.code, exc.name, exc.description)


def invalid_input(exc: InputError):
    return error_response(400, "Bad Request", str(exc), {"fields": exc.fields})


def install(app: Flask) -> None:
    from . import accounts, mailbox, settings, stats, submit  # noqa: F401 - register their routes on the blueprint

    app.register_blueprint(blueprint)
    app.after_request(count_api_call)
    app.register_error_handler(HTTPException, json_http_error)
    app.register_error_handler(InputError, invalid_input)
