"""HTTP errors under /admin as small HTML pages, not the API's JSON.

A path under /admin that matches no route (404, 405) is not yet in the admin blueprint when
Flask looks for a handler, so those two are caught app-wide and handed back to the API's JSON
handler for every other path. Errors inside admin views (400, 413, 500) use the blueprint's.
"""

from __future__ import annotations

from flask import Flask, make_response, render_template, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from . import blueprint
from .guard import security_headers

PREFIX = "/admin"


def under_admin() -> bool:
    return request.path == PREFIX or request.path.startswith(PREFIX + "/")


@blueprint.errorhandler(HTTPException)
def error_page(exc: HTTPException):
    message = "There is no such admin page." if exc.code == 404 else exc.description
    response = make_response(render_template("admin/message.html", title=f"{exc.code} {exc.name}",
                                             message=message), exc.code)
    for name, value in exc.get_headers():  # e.g. the Allow of a 405
        if name.lower() != "content-type":
            response.headers[name] = value
    return security_headers(response)


def install(app: Flask) -> None:
    from ..api import json_http_error

    def routing_error(exc: HTTPException):
        return error_page(exc) if under_admin() else json_http_error(exc)

    app.register_error_handler(NotFound, routing_error)
    app.register_error_handler(MethodNotAllowed, routing_error)
