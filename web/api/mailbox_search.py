"""EmailEngine's search object -> IMAP SEARCH criteria (a JSON list of tokens for the holder).

Every field is checked here, so the IMAP process gets only well-formed criteria; a bad field is
a 400 naming it (`search.since`). Strings go as quoted IMAP strings (imapclient quotes them,
UTF-8 charset), dates as IMAP dates.
"""

from __future__ import annotations

import datetime
import re

from shared.errors import InputError

FLAGS = {"seen": ("SEEN", "UNSEEN"), "flagged": ("FLAGGED", "UNFLAGGED"),
         "answered": ("ANSWERED", "UNANSWERED"), "draft": ("DRAFT", "UNDRAFT"),
         "deleted": ("DELETED", "UNDELETED")}
TEXTS = {"from": "FROM", "to": "TO", "cc": "CC", "bcc": "BCC", "subject": "SUBJECT", "body": "BODY",
         "text": "TEXT"}
SIZES = {"larger": "LARGER", "smaller": "SMALLER"}
DATES = {"since": "SINCE", "before": "BEFORE", "sentSince": "SENTSINCE", "sentBefore": "SENTBEFORE"}
MAX_TEXT = 1000
_SEQUENCE_SET = re.compile(r"^(\d+|\*)(:(\d+|\*))?(,(\d+|\*)(:(\d+|\*))?)*$")
_HEADER_NAME = re.compile(r"^[!-9;-~]{1,100}$")  # printable ASCII but ':'
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _text(name: str, value) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT or any(ord(c) < 32 for c in value):
        raise InputError({f"search.{name}": f"must be text (1 to {MAX_TEXT} characters)"})
    return value


def _date(name: str, value) -> str:
    try:
        if not isinstance(value, str):
            raise ValueError
        day = datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        raise InputError({f"search.{name}": "must be a date (ISO 8601, such as 2024-05-01)"}) from None
    return f"{day.day:02d}-{MONTHS[day.month - 1]}-{day.year:04d}"


def search_criteria(search) -> list:
    if search is None:
        search = {}
    if not isinstance(search, dict):
        raise InputError({"search": "must be an object (EmailEngine's search fields)"})
    known = set(FLAGS) | set(TEXTS) | set(SIZES) | set(DATES) | {"uid", "header"}
    unknown = sorted(set(search) - known)
    if unknown:
        raise InputError({f"search.{unknown[0]}": "is not a search field this server knows"})
    criteria: list = []
    for name, value in search.items():
        if name in FLAGS:
            if not isinstance(value, bool):
                raise InputError({f"search.{name}": "must be true or false"})
            criteria.append(FLAGS[name][0 if value else 1])
        elif name in TEXTS:
            criteria += [TEXTS[name], _text(name, value)]
        elif name in SIZES:
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2 ** 32:
                raise InputError({f"search.{name}": "must be a size in bytes"})
            criteria += [SIZES[name], str(value)]
        elif name in DATES:
            criteria += [DATES[name], _date(name, value)]
        elif name == "uid":
            if not isinstance(value, str) or len(value) > MAX_TEXT or not _SEQUENCE_SET.match(value):
                raise InputError({"search.uid": "must be a UID set (such as 1:100 or 5,7,9)"})
            criteria += ["UID", value]
        else:  # header
            if not isinstance(value, dict) or not value:
                raise InputError({"search.header": "must be an object of header name -> text"})
            for header, text in value.items():
                if not _HEADER_NAME.match(header):
                    raise InputError({"search.header": f"{header[:50]!r} is not a header name"})
                criteria += ["HEADER", header, "" if text is True else _text(f"header.{header}", text)]
    return criteria or ["ALL"]
