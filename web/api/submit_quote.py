"""`reference.inline` on a reply: the original's text quoted below the new one, as mail clients
do ("On <date>, <sender> wrote:" and the text with "> " before each line; in html, the
original's html, else its escaped plain text, in a <blockquote type="cite">). Each part the new
message has gets its quote; a reply with neither text nor html gets a plain one.
"""

from __future__ import annotations

import html as html_text
import re

_TAG = re.compile(r"<[^>]*>")
_BODY = re.compile(r"<body[^>]*>(.*)</body>", re.IGNORECASE | re.DOTALL)
_STYLE = re.compile(r"<(style|script|head)[^>]*>.*?</\1>", re.IGNORECASE | re.DOTALL)


def attribution(original: dict) -> str:
    sender = original.get("from") or {}
    who = (f"{sender['name']} <{sender['address']}>" if sender.get("name") else sender.get("address")) \
        or "someone"
    when = original.get("headerDate") or original.get("date")
    return f"On {when}, {who} wrote:" if when else f"{who} wrote:"


def _plain_of(text: dict) -> str:
    if text.get("plain"):
        return text["plain"]
    # Only html: its text, roughly (a quote, not a rendering).
    stripped = _TAG.sub("", _STYLE.sub("", text.get("html") or ""))
    return html_text.unescape(stripped).strip()


def _html_of(text: dict) -> str:
    if text.get("html"):
        found = _BODY.search(text["html"])
        return _STYLE.sub("", found.group(1) if found else text["html"])
    return f"<pre>{html_text.escape(text.get('plain') or '')}</pre>"


def quoted(new_text: str | None, new_html: str | None, original: dict) -> tuple[str | None, str | None]:
    """(text, html) of the reply with the original quoted in each; `original`: the mailbox API's
    message body read with textType "*"."""
    text = original.get("text") or {}
    line = attribution(original)
    if new_text is None and new_html is None:
        new_text = ""
    if new_text is not None:
        quote = "\n".join(f"> {row}" if row else ">" for row in _plain_of(text).splitlines())
        new_text = f"{new_text.rstrip()}\n\n{line}\n{quote}\n".lstrip("\n")
    if new_html is not None:
        new_html = (f"{new_html}\n<p>{html_text.escape(line)}</p>\n<blockquote type=\"cite\" "
                    f"style=\"margin:0 0 0 .8ex;border-left:1px solid #ccc;padding-left:1ex\">\n"
                    f"{_html_of(text)}\n</blockquote>\n")
    return new_text, new_html
