"""rq-dashboard's job views, made to show job data as text.

rq-dashboard 0.9 renders job fields into the page with underscore templates, and its job view
interpolates them raw (`<%= d.exc_info %>`, `<%= d.metadata %>`, `<%= d.description %>`): a
receiver's answer in a job's error (workers/webhooks/untrusted.py keeps it printable, not free of
markup) would run as script in /admin/rq. Its templates are loaded through this loader, which
turns every raw interpolation into underscore's escaping one (`<%-`); the list view's own
escaping idiom (`$('<div/>').text(x).html()`) becomes `<%- x %>` so nothing is escaped twice.
"""

from __future__ import annotations

import re

from flask import Flask
from jinja2 import BaseLoader

_JQUERY_ESCAPED = re.compile(r"<%=\s*\$\('<div/>'\)\.text\((.+?)\)\.html\(\)\s*%>")
_RAW = re.compile(r"<%=")


def escape_interpolations(source: str) -> str:
    """An underscore template source with every `<%= x %>` made `<%- x %>` (HTML-escaped)."""
    return _RAW.sub("<%-", _JQUERY_ESCAPED.sub(r"<%- \1 %>", source))


class EscapingLoader(BaseLoader):
    def __init__(self, inner: BaseLoader):
        self.inner = inner

    def get_source(self, environment, template):
        source, filename, uptodate = self.inner.get_source(environment, template)
        if template.startswith("rq_dashboard/"):
            source = escape_interpolations(source)
        return source, filename, uptodate

    def list_templates(self):
        return self.inner.list_templates()


class EscapingDashboard(Flask):
    """The Flask app rq-dashboard's blueprint runs in, with its templates escaped (above)."""

    def create_global_jinja_loader(self):
        return EscapingLoader(super().create_global_jinja_loader())
