"""Bearer-token authentication for /metrics and /v1/* (DESIGN section 5)."""

from __future__ import annotations

from flask import current_app, jsonify, request

from shared.stores.tokens import Token


def error_response(status: int, error: str, message: str, extra: dict | None = None, **headers):
    """The JSON error answer; `extra` adds fields to the body (such as `fields` of a 400)."""
    response = jsonify({"statusCode": status, "error": error, "message": message, **(extra or {})})
    response.status_code = status
    response.headers.update(headers)
    return response


def presented_token() -> str | None:
    """The token from `Authorization: Bearer`, or `?access_token=` when no header is sent."""
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        return value.strip() if scheme.lower() == "bearer" else None
    return request.args.get("access_token")


def require_scope(scope: str) -> tuple[Token | None, object | None]:
    """(token, None) when allowed, else (None, the 401/403 response to send)."""
    store = current_app.config["TOKENS"]
    token = store.verify(presented_token())
    if token is None:
        return None, error_response(401, "Unauthorized", "Missing or invalid access token",
                                    **{"WWW-Authenticate": "Bearer"})
    store.record_use(token, request.remote_addr)
    if not token.allows(scope):
        return None, error_response(403, "Forbidden", f"This token does not have the {scope!r} scope")
    return token, None
