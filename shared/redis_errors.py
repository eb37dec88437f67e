"""Redis errors grouped by kind, and their text made safe for logs.

Redis fails in more ways than "connection refused". The kinds, a closed set (label `kind`):
  connection, timeout, loading (a restarting Redis still reading its data), auth (credentials
  refused mid-run), readonly (a replica answered: a failover under way, or one that went wrong),
  masterdown, tryagain, busy (a script running too long): these pass by themselves;
  oom (maxmemory reached under noeviction), misconf (RDB/AOF cannot be written, e.g. a full
  disk), noperm (an ACL forbids the command), execabort (a MULTI refused because a command in it
  was), other (any other error answer): these last until an operator acts.
Every loop meets them the same way, through shared.redis_trouble. This module records no
metric, so the `mailpulse` command can use it without a metrics directory.
"""

from __future__ import annotations

import re

import redis

KINDS = ("connection", "timeout", "loading", "auth", "readonly", "masterdown", "tryagain", "busy",
         "oom", "misconf", "noperm", "execabort", "other")
MAX_MESSAGE = 300
# redis-py names a failed pipeline command with its arguments ("Command # 2 (SET key value) of
# pipeline caused error: ..."); the arguments can be secrets: keep the command's name only.
_PIPELINE_COMMAND = re.compile(r"^Command # (\d+) \((\S+).*?\) of pipeline caused error: ", re.DOTALL)
_BY_PREFIX = {"MISCONF": "misconf", "BUSY": "busy", "NOPERM": "noperm", "OOM": "oom",
              "READONLY": "readonly", "EXECABORT": "execabort", "MASTERDOWN": "masterdown",
              "LOADING": "loading", "TRYAGAIN": "tryagain", "NOAUTH": "auth", "WRONGPASS": "auth"}


def kind_of(exc: BaseException) -> str:
    """The kind of a Redis error (one of KINDS)."""
    if isinstance(exc, redis.TimeoutError):
        return "timeout"
    if isinstance(exc, redis.BusyLoadingError):
        return "loading"
    if isinstance(exc, (redis.AuthenticationError, redis.exceptions.AuthorizationError)):
        return "auth"
    if isinstance(exc, redis.ConnectionError):  # incl. "The previous master is now a slave"
        return "connection"
    if isinstance(exc, redis.exceptions.ReadOnlyError):
        return "readonly"
    if isinstance(exc, redis.exceptions.MasterDownError):
        return "masterdown"
    if isinstance(exc, redis.exceptions.TryAgainError):
        return "tryagain"
    if isinstance(exc, redis.exceptions.OutOfMemoryError):
        return "oom"
    if isinstance(exc, redis.exceptions.NoPermissionError):
        return "noperm"
    if isinstance(exc, redis.exceptions.ExecAbortError):
        return "execabort"
    server_text = _PIPELINE_COMMAND.sub("", str(exc)).lstrip()
    return _BY_PREFIX.get(server_text.split(" ", 1)[0].upper(), "other")


def message_of(exc: BaseException) -> str:
    """The error's text, safe for logs: no command arguments, bounded, one line."""
    text = _PIPELINE_COMMAND.sub(lambda m: f"command #{m.group(1)} ({m.group(2)}) of a pipeline: ", str(exc))
    text = " ".join(text.split())
    return text[:MAX_MESSAGE]
