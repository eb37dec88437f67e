"""/admin/tokens: the list, "Create new" (All scopes, or API / Metrics), revoke.

A new token is shown once, in the response to the form that made it; only its hash is stored.
"""

from __future__ import annotations

import re

from flask import current_app, redirect, render_template, request, url_for

from shared.stores.tokens import TokenError, TokenStore

from . import blueprint

SCOPE_CHOICES = (("api", "API", "the REST API under /v1"), ("metrics", "Metrics", "GET /metrics"))
MAX_DESCRIPTION = 200


def _store() -> TokenStore:
    return current_app.config["TOKENS"]


def render_tokens(status: int = 200, **extra):
    return render_template("admin/tokens.html", page="tokens", tokens=_store().list(),
                           scope_choices=SCOPE_CHOICES, **extra), status


def chosen_scopes(form) -> list[str]:
    if form.get("scope_all"):
        return ["*"]
    return [scope for scope, _, _ in SCOPE_CHOICES if form.get(f"scope_{scope}")]


@blueprint.get("/tokens")
def tokens():
    revoked = request.args.get("revoked", "")
    return render_tokens(revoked=revoked if re.fullmatch(r"[0-9a-f]{6,64}", revoked) else None)


@blueprint.post("/tokens")
def create_token():
    description = request.form.get("description", "").strip()
    scopes = chosen_scopes(request.form)
    errors = {}
    if not scopes:
        errors["scopes"] = "choose All scopes or at least one scope."
    if len(description) > MAX_DESCRIPTION:
        errors["description"] = f"at most {MAX_DESCRIPTION} characters."
    if errors:
        return render_tokens(400, errors=errors, form=request.form)
    token = _store().issue(scopes, description)
    return render_tokens(new_token=token, new_scopes=scopes, new_description=description)


@blueprint.post("/tokens/<token_id>/revoke")
def revoke_token(token_id: str):
    try:
        token = _store().revoke(token_id)
    except TokenError as exc:
        return render_tokens(404, errors={"revoke": str(exc)})
    return redirect(url_for("admin.tokens", revoked=token.id))
