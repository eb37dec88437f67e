"""/admin/webhooks: target URL, on/off, events, "Send test webhook", the last delivery error.

Saves through the same SettingsStore as POST /v1/settings, so validation is the API's.
"""

from __future__ import annotations

from flask import current_app, redirect, render_template, request, url_for

from shared import events
from shared.stores.settings import SettingsError, SettingsStore

from . import blueprint

EVENT_CHOICES = events.EVENTS


def _store() -> SettingsStore:
    return SettingsStore(current_app.config["REDIS"], current_app.config["KEYS"])


def render_webhooks(status: int = 200, values: dict | None = None, **extra):
    store = _store()
    return render_template("admin/webhooks.html", page="webhooks", values=values or store.get_all(),
                           last_error=store.webhook_error(), event_choices=EVENT_CHOICES,
                           **extra), status


def update_from_form(form) -> dict:
    chosen = ["*"] if form.get("event_all") else form.getlist("event")
    return {"webhooks": form.get("webhooks", ""), "webhooksEnabled": bool(form.get("webhooksEnabled")),
            "webhookEvents": chosen}


@blueprint.get("/webhooks")
def webhooks():
    return render_webhooks(saved=bool(request.args.get("saved")), test_job=request.args.get("test_job"))


@blueprint.post("/webhooks")
def save_webhooks():
    update = update_from_form(request.form)
    if not update["webhookEvents"]:
        return render_webhooks(400, values=update, errors={"webhookEvents": "choose at least one event"})
    try:
        _store().update(update)
    except SettingsError as exc:
        return render_webhooks(400, values=update, errors=exc.fields)
    return redirect(url_for("admin.webhooks", saved=1))


@blueprint.post("/webhooks/test")
def send_test_webhook():
    cfg = current_app.config
    job_id = events.emit_test(cfg["REDIS"], cfg["KEYS"])
    return redirect(url_for("admin.webhooks", test_job=job_id))
