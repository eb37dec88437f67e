"""The first thing every entry point calls: configuration, logging, the metrics directory.

prometheus_client picks single- or multi-process mode when `prometheus_client.values` is first
imported, from PROMETHEUS_MULTIPROC_DIR in the environment. So the directory is resolved and put
into the environment here, before anything imports prometheus_client, whether the process was
started by honcho, by `python -m`, or by a test.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile

from .. import config as config_module
from ..errors import ConfigError


def prepare(process_type: str, register: bool = True) -> config_module.Config:
    """Load configuration and make the metrics directory ready; raises ConfigError.

    register=False for a helper process that is not a worker (the web process's folder): it
    leaves no marker, so its end is never counted as a process that died.
    """
    config = config_module.load()
    logging.basicConfig(
        level=config.LOG_LEVEL,
        format=f"%(asctime)s {process_type}[%(process)d] %(levelname)s %(name)s: %(message)s")
    metrics_dir = config.PROMETHEUS_MULTIPROC_DIR
    _ensure_writable_dir("PROMETHEUS_MULTIPROC_DIR", metrics_dir)
    already = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if "prometheus_client.values" in sys.modules and already != metrics_dir:
        raise RuntimeError("prometheus_client was imported before shared.runtime.bootstrap.prepare()")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    from ..metrics import directory as metricsdir  # prometheus_client is imported from here on

    metricsdir.use_instance_ids()
    if register:
        metricsdir.register(metrics_dir, process_type)
    return config


def _ensure_writable_dir(setting: str, path: str) -> None:
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise ConfigError(f"{setting}: {path} is not a writable directory ({exc.strerror})") from None


def exit_on_config_error(exc: ConfigError) -> None:
    """Print the one-line message and exit non-zero (no traceback)."""
    print(f"mailpulse: configuration error: {exc}", file=sys.stderr)
    raise SystemExit(exc.exit_code)
