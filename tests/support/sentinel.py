"""A real Redis Sentinel set on loopback: a master, a replica and three Sentinels (Debian's
redis-server and redis-sentinel), with failover timings short enough for a test."""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import redis

from .servers import free_port, wait_for

MASTER_NAME = "mailpulse-test"


def _answers(port: int) -> bool:
    try:
        return redis.Redis(port=port, socket_timeout=1).ping()
    except redis.RedisError:
        return False


class SentinelSet:
    def __init__(self, directory: Path):
        self.directory = directory
        self.redis_ports = [free_port(), free_port()]
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.procs: dict[int, subprocess.Popen] = {}

    @property
    def sentinels(self) -> str:
        """The REDIS_SENTINELS setting."""
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    def start(self) -> None:
        binary, sentinel = shutil.which("redis-server"), shutil.which("redis-sentinel")
        assert binary and sentinel, "redis-server and redis-sentinel are needed (bin/test installs them)"
        master, replica = self.redis_ports
        for port, extra in ((master, []), (replica, ["--replicaof", "127.0.0.1", str(master)])):
            data = self.directory / f"redis-{port}"
            data.mkdir()
            self._spawn(port, [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data),
                               "--save", "", "--appendonly", "no", *extra])
        for port in self.sentinel_ports:
            conf = self.directory / f"sentinel-{port}.conf"  # Sentinels rewrite their own file
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.directory}\n"
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master} 2\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} 1000\n"
                f"sentinel failover-timeout {MASTER_NAME} 5000\n"
                f"sentinel parallel-syncs {MASTER_NAME} 1\n")
            self._spawn(port, [sentinel, str(conf)])
        for port in self.redis_ports + self.sentinel_ports:
            wait_for(lambda p=port: _answers(p), what=f"redis/sentinel on {port}")
        wait_for(lambda: redis.Redis(port=master).info("replication")["connected_slaves"] == 1,
                 what="the replica to be in sync")
        wait_for(lambda: all(self._knows_replica(p) for p in self.sentinel_ports),
                 what="every Sentinel to know the replica and the others")

    def _knows_replica(self, port: int) -> bool:
        client = redis.Redis(port=port, socket_timeout=1)
        master = client.sentinel_master(MASTER_NAME)
        return master["num-slaves"] >= 1 and master["num-other-sentinels"] >= 2

    def _spawn(self, port: int, argv: list[str]) -> None:
        log = open(self.directory / f"{port}.log", "ab")
        self.procs[port] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)

    def master_port(self) -> int:
        client = redis.Redis(port=self.sentinel_ports[0], socket_timeout=1)
        return int(client.sentinel_get_master_addr_by_name(MASTER_NAME)[1])

    def kill_master(self) -> int:
        """SIGKILL the current master; returns its port."""
        port = self.master_port()
        self.procs[port].send_signal(signal.SIGKILL)
        self.procs[port].wait(10)
        return port

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
