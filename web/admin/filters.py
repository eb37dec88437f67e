"""Jinja filters of the admin templates."""

from __future__ import annotations

import time

from . import blueprint


@blueprint.app_template_filter("when")
def when(ts) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(ts))) if ts else "never"


@blueprint.app_template_filter("bytes")
def human_bytes(value) -> str:
    value = float(value or 0)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
