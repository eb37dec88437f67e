"""Start, heartbeat and clean exit of a mailpulse process (web, imap or webhooks).

start(): waits for Redis, counts `thread_starts`, leaves a marker in the metrics directory and
registers a heartbeat. heartbeat_loop(): beats until told to stop, riding out Redis outages.
stop(): counts `thread_stops`, removes the process's live gauges, marker and heartbeat.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time

import redis

from ..config import Config
from ..keys import Keys
from ..metrics import definitions as metrics
from ..metrics import directory as metricsdir
from ..redis_conn import connect, wait_until_ready
from ..redis_errors import KINDS, kind_of
from ..redis_trouble import RedisTrouble, retry_until_done
from ..secret import check_shared_secret, service_secret
from .heartbeats import Heartbeats

log = logging.getLogger(__name__)


class Lifecycle:
    def __init__(self, config: Config, process_type: str):
        self.config = config
        self.process_type = process_type
        self.keys = Keys(config.REDIS_PREFIX)
        self.redis = connect(config)
        self.heartbeats = Heartbeats(self.redis, self.keys)
        self.pid = os.getpid()
        self.started = time.time()
        self.worker_id: str | None = None
        self._info_json = ""

    def start(self) -> None:
        """Raises ConfigError when Redis never answers or the service secret disagrees.

        A Redis that answers but refuses (a full disk, maxmemory, an ACL) is waited out.
        """
        wait_until_ready(self.redis, self.config)
        secret = service_secret(self.config)
        retry_until_done("start", self.process_type,
                         lambda: check_shared_secret(self.redis, self.keys, secret), logger=log)
        metrics.safely(metrics.thread_starts.inc)
        for kind in KINDS:  # every kind shows from the start, 0 until it fails (alerts see it)
            metrics.safely(metrics.redis_failing.labels(process=self.process_type, kind=kind).set, 0)
        self.worker_id = retry_until_done(
            "start", self.process_type,
            lambda: self.heartbeats.register(self.process_type, self.pid, self.started), logger=log)
        self._info_json = json.dumps({"type": self.process_type, "host": socket.gethostname(),
                                      "pid": self.pid, "started": self.started})
        log.info("%s process started (pid %d)", self.process_type, self.pid)

    def heartbeat_loop(self, stop: threading.Event) -> None:
        """Beat every HEARTBEAT_INTERVAL until `stop` is set; every Redis error is retried."""
        trouble = RedisTrouble("heartbeat", self.process_type, log)
        while not stop.wait(self.config.HEARTBEAT_INTERVAL):
            try:
                self.heartbeats.beat(self.worker_id, self._info_json)
            except redis.RedisError as exc:  # whatever it is, a heartbeat must not end silently
                trouble.failed(exc)
            else:
                trouble.succeeded()

    def stop(self) -> None:
        metrics.safely(metrics.thread_stops.inc)
        metricsdir.unregister(self.config.PROMETHEUS_MULTIPROC_DIR, metricsdir.instance_id(self.pid))
        if self.worker_id:
            try:
                self.heartbeats.unregister(self.worker_id)
            except redis.RedisError as exc:
                log.warning("could not remove heartbeat (Redis unavailable: %s); it expires by itself",
                            kind_of(exc))
        log.info("%s process stopped", self.process_type)
