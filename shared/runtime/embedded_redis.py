"""`mailpulse embedded-redis`: the embedded default Redis, exec'd in place of this process.

It serves the address REDIS_URL names, which must be local (the default, redis://127.0.0.1:6479/0,
keeps clear of a Redis the machine may run on 6379), and persists under VAR_DIR/redis with the
append-only file on. A password in REDIS_URL becomes the server's `requirepass`, through a config
file only its owner can read (never on the command line, which `ps` shows).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from urllib.parse import unquote, urlsplit

from .. import config as config_module
from ..errors import ConfigError
from .bootstrap import exit_on_config_error

LOCAL_HOSTS = {"127.0.0.1": "127.0.0.1", "localhost": "127.0.0.1", "::1": "::1"}


def server_argv(config: config_module.Config, binary: str) -> list[str]:
    """redis-server's arguments for this configuration; ConfigError when it cannot serve it."""
    url = urlsplit(config.REDIS_URL)
    redacted = config_module.redact_url(config.REDIS_URL)
    bind = LOCAL_HOSTS.get(url.hostname or "")
    if url.scheme != "redis" or bind is None:
        raise ConfigError(f"REDIS_URL: {redacted} is not a local redis:// address, which the embedded "
                          "Redis needs; leave the `redis` process out to use that Redis")
    if url.username and unquote(url.username) != "default":
        raise ConfigError(f"REDIS_URL: {redacted} names a user; the embedded Redis has only the default one")
    data = os.path.join(config.VAR_DIR, "redis")
    try:
        os.makedirs(data, exist_ok=True)
        config_file = _write_config(data, unquote(url.password) if url.password else None)
    except OSError as exc:
        raise ConfigError(f"VAR_DIR: cannot keep the embedded Redis's data in {data} "
                          f"({exc.strerror})") from None
    return [binary, config_file, "--bind", bind, "--port", str(url.port or 6379), "--dir", data,
            "--appendonly", "yes", "--appendfilename", "mailpulse.aof", "--dbfilename", "mailpulse.rdb",
            "--save", "3600", "1", "300", "100"]


def _write_config(directory: str, password: str | None) -> str:
    path = os.path.join(directory, "mailpulse-redis.conf")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("# written by `mailpulse embedded-redis` at every start, from REDIS_URL\n")
        if password:
            f.write('requirepass "' + password.replace("\\", "\\\\").replace('"', '\\"') + '"\n')
    return path


def exec_server(args: list[str]) -> None:
    argparse.ArgumentParser(
        prog="mailpulse embedded-redis", description=__doc__.split("\n\n")[0].split(": ", 1)[1],
        epilog="settings used: REDIS_URL (address and password), VAR_DIR (data)").parse_args(args)
    try:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ConfigError("REDIS_URL: the embedded Redis needs redis-server, which is not installed "
                              "(apt-get install redis-server)")
        argv = server_argv(config_module.load(), binary)
    except ConfigError as exc:
        exit_on_config_error(exc)
    sys.stdout.flush()
    os.execv(argv[0], argv)
