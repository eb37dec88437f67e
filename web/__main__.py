"""Web process: `python -m web`. Serves HOST:PORT with waitress; SIGTERM/SIGINT exit cleanly."""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import signal
import socket
import threading

from shared import config as config_module
from shared.errors import ConfigError
from shared.runtime import bootstrap

log = logging.getLogger("web")


def _stop_on_signal(signum, frame):
    # Only unwinds the main thread's accept loop; the clean-up runs in normal code, never here.
    raise SystemExit(0)


def proxy_options(config) -> dict:
    """waitress's reverse-proxy options: X-Forwarded-* (or Forwarded) set the client's address and
    the scheme only on connections from TRUSTED_PROXY; from anyone else they are removed."""
    options = {"clear_untrusted_proxy_headers": True}
    if config.TRUSTED_PROXY:
        options.update(trusted_proxy=config.TRUSTED_PROXY, trusted_proxy_count=1,
                       trusted_proxy_headers=set(config.TRUSTED_PROXY_HEADERS))
    return options


# A streamed body (attachment, source) pauses once this much is waiting for a slow client
# (waitress's default is 16 MiB per response).
OUTBUF_HIGH_WATERMARK = 2 * 1024 * 1024


M_ARENA_MAX = -8  # glibc's mallopt() parameter
MALLOC_ARENAS = 1  # Python allocates under the GIL anyway: one arena costs no concurrency


def limit_malloc_arenas() -> None:
    """glibc gives each thread that allocates a malloc arena of its own and keeps what was freed
    in it: every waitress thread that once streamed 256 KiB chunks (attachments, sources) kept
    ~4 MiB, so the process grew with the number of threads used. One arena keeps it flat.
    Elsewhere than glibc, nothing to do."""
    try:
        ctypes.CDLL(None).mallopt(M_ARENA_MAX, MALLOC_ARENAS)
    except (OSError, AttributeError):
        pass


def create_server(app, config):
    from waitress import create_server as waitress_server

    from web.admin.guard import MAX_BODY as ADMIN_MAX_BODY

    # waitress refuses a body over this (413) from its Content-Length, before reading or spooling
    # it to disk, and before any authentication runs; the admin pages allow less (guard.py).
    max_body = max(config.API_MAX_BODY, ADMIN_MAX_BODY)
    try:
        return waitress_server(app, host=config.HOST, port=config.PORT, threads=config.WEB_THREADS,
                               ident="mailpulse", max_request_body_size=max_body,
                               outbuf_high_watermark=OUTBUF_HIGH_WATERMARK, **proxy_options(config))
    except socket.gaierror as exc:
        raise ConfigError(f"HOST: cannot resolve {config.HOST!r} ({exc.strerror})") from None
    except OSError as exc:
        raise ConfigError(f"PORT: cannot listen on {config.HOST}:{config.PORT} ({exc.strerror})") from None


def install_prepared_token(app, config) -> None:
    from shared.redis_trouble import retry_until_done

    if config.PREPARED_TOKEN:
        retry_until_done("prepared token", "web", lambda: app.config["TOKENS"].install(
            config.PREPARED_TOKEN, config.PREPARED_TOKEN_SCOPES, "prepared token"), logger=log)
        log.info("prepared token installed (scopes %s)", ",".join(config.PREPARED_TOKEN_SCOPES))


def loud(target, failed: list):
    """A background thread's target that, should it ever raise, stops the process non-zero (its
    supervisor restarts it) rather than living on without the thread."""

    def run(*args):
        try:
            target(*args)
        except Exception:
            log.exception("%s failed; stopping the web process", getattr(target, "__name__", target))
            failed.append(True)
            os.kill(os.getpid(), signal.SIGTERM)

    return run


def main() -> None:
    argparse.ArgumentParser(
        prog="python -m web", description="mailpulse web process (REST API, admin pages, /health, /metrics)",
        epilog="settings (environment or .env):\n" + config_module.describe(),
        formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    limit_malloc_arenas()  # before any thread starts
    try:
        config = bootstrap.prepare("web")
        from shared.runtime.lifecycle import Lifecycle  # imports prometheus_client: after prepare()
        from web.app import create_app

        app = create_app(config)
        server = create_server(app, config)
        lifecycle = Lifecycle(config, "web")
        lifecycle.start()
        install_prepared_token(app, config)
    except ConfigError as exc:
        bootstrap.exit_on_config_error(exc)
    from web.folding import FolderProcess

    stop, failed = threading.Event(), []
    beats = threading.Thread(target=loud(lifecycle.heartbeat_loop, failed), args=(stop,), name="heartbeat",
                             daemon=True)
    beats.start()
    folder = FolderProcess()
    folder.start()
    signal.signal(signal.SIGTERM, _stop_on_signal)
    signal.signal(signal.SIGINT, _stop_on_signal)
    log.info("listening on http://%s:%d", config.HOST, config.PORT)
    try:
        server.run()
    except SystemExit:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop.set()
        server.close()
        server.task_dispatcher.shutdown(timeout=5)
        folder.stop()
        lifecycle.stop()
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
