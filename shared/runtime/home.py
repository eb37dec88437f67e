"""The app root: the directory whose `.env` and `var/` a mailpulse process uses, wherever it runs.

`MAILPULSE_HOME` names it; unset, it is the working directory (`honcho start` in the checkout).
A service manager starts processes in `/` (systemd) or wherever it likes, so the configurations
`mailpulse export` writes set MAILPULSE_HOME, and a process started in `/` without it refuses to
start rather than keep its state in `/var`. Relative VAR_DIR and PROMETHEUS_MULTIPROC_DIR are
resolved against the app root, and `.env` is read from it.
"""

from __future__ import annotations

import os

from dotenv import dotenv_values

from ..errors import ConfigError

SETTING = "MAILPULSE_HOME"
DOTENV = ".env"


def resolve(env: dict[str, str]) -> str:
    """The app root as an absolute path; raises ConfigError when it is missing or unreadable."""
    given = env.get(SETTING, "")
    if not given:
        try:
            cwd = os.getcwd()
        except FileNotFoundError:
            raise ConfigError(f"{SETTING}: unset, and the working directory no longer exists") from None
        if cwd == os.sep:
            raise ConfigError(f"{SETTING}: unset, and the working directory is / (as a service manager "
                              "starts processes); set it to the directory of mailpulse's .env and var/")
        return cwd
    path = os.path.abspath(os.path.expanduser(given))
    if not os.path.isdir(path):
        raise ConfigError(f"{SETTING}: {path} is not a directory")
    if not os.access(path, os.R_OK | os.X_OK):
        raise ConfigError(f"{SETTING}: {path} cannot be read")
    return path


def read_dotenv(path: str) -> dict[str, str | None] | None:
    """The values of the `.env` file at `path`, None when there is none; ConfigError if unreadable."""
    try:
        with open(path, encoding="utf-8") as stream:
            return dotenv_values(stream=stream)
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise ConfigError(f"{SETTING}: {path} cannot be read ({reason})") from None


def resolve_path(root: str, path: str) -> str:
    """`path` made absolute against the app root (an absolute path stays as it is)."""
    return os.path.normpath(os.path.join(root, os.path.expanduser(path)))
