"""GET/POST /v1/settings (webhook target, switch and event filter) and POST /v1/webhooks/test."""

from __future__ import annotations

from flask import current_app, jsonify, request

from shared import events
from shared.stores.settings import SettingsStore

from ..auth import error_response
from . import blueprint


def _store() -> SettingsStore:
    return SettingsStore(current_app.config["REDIS"], current_app.config["KEYS"])


@blueprint.get("/settings")
def get_settings():
    store = _store()
    values = store.get_all()
    values["serviceSecret"] = current_app.config["SERVICE_SECRET"]
    values["webhookErrorFlag"] = store.webhook_error()
    return jsonify(values)


@blueprint.post("/settings")
def update_settings():
    body = request.get_json(silent=True)
    if body is None:
        return error_response(400, "Bad Request", "body: must be a JSON object")
    saved = _store().update(body)  # SettingsError -> 400 naming the fields (api.invalid_input)
    return jsonify({"updated": sorted(saved)})


@blueprint.post("/webhooks/test")
def send_test_webhook():
    cfg = current_app.config
    job_id = events.emit_test(cfg["REDIS"], cfg["KEYS"])
    return jsonify({"success": True, "jobId": job_id})
