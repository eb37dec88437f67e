"""/admin/accounts: list with state and last error, add, delete, reconnect."""

from __future__ import annotations

from flask import render_template

from . import blueprint


@blueprint.get("/accounts")
def accounts():
    return render_template("admin/message.html", page="accounts", title="Accounts",
                           message="The account store is not merged yet.")
