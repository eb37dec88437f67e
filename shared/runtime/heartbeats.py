"""Worker heartbeats in Redis: who is alive, of which type, since when.

A sorted set maps worker id -> time of last beat; a hash keeps each worker's static facts.
Readers decide from the beat's age: fresh (live), overdue (unresponsive), or forgotten.
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass

import redis

from ..keys import Keys

OVERDUE_BEATS = 3  # a worker is unresponsive after missing this many beats
FORGET_AFTER = 600  # seconds after which an unresponsive worker's entry is dropped
RECENT = 600  # a worker started less than this many seconds ago is `recent`


@dataclass(frozen=True)
class WorkerInfo:
    id: str
    type: str
    host: str
    pid: int
    started: float
    last_beat: float


def worker_id(process_type: str, pid: int) -> str:
    return f"{socket.gethostname()}:{pid}:{process_type}"


class Heartbeats:
    def __init__(self, conn: redis.Redis, keys: Keys):
        self.conn = conn
        self.keys = keys

    def register(self, process_type: str, pid: int, started: float) -> str:
        wid = worker_id(process_type, pid)
        info = {"type": process_type, "host": socket.gethostname(), "pid": pid, "started": started}
        pipe = self.conn.pipeline()
        pipe.hset(self.keys.workers, wid, json.dumps(info))
        pipe.zadd(self.keys.heartbeats, {wid: time.time()})
        pipe.execute()
        return wid

    def beat(self, wid: str, info_json: str) -> None:
        pipe = self.conn.pipeline()
        pipe.hset(self.keys.workers, wid, info_json)  # restores the entry if it was forgotten
        pipe.zadd(self.keys.heartbeats, {wid: time.time()})
        pipe.execute()

    def unregister(self, wid: str) -> None:
        pipe = self.conn.pipeline()
        pipe.zrem(self.keys.heartbeats, wid)
        pipe.hdel(self.keys.workers, wid)
        pipe.execute()

    def workers(self, now: float | None = None) -> list[WorkerInfo]:
        """Every known worker. Reads only; entries overdue for longer than FORGET_AFTER are left
        out, and dropped from Redis when it takes writes (a Redis refusing them, full disk or
        maxmemory, must not make /metrics or /health fail)."""
        now = time.time() if now is None else now
        pipe = self.conn.pipeline(transaction=False)
        pipe.zrangebyscore(self.keys.heartbeats, now - FORGET_AFTER, "+inf", withscores=True)
        pipe.hgetall(self.keys.workers)
        recent, infos = pipe.execute()
        beats = dict(recent)
        result = []
        for wid, raw in infos.items():
            if wid not in beats:
                continue
            info = json.loads(raw)
            result.append(WorkerInfo(wid.decode(), info["type"], info["host"], info["pid"],
                                     info["started"], beats[wid]))
        forgotten = [wid for wid in infos if wid not in beats]
        if forgotten:
            try:
                pipe = self.conn.pipeline(transaction=False)
                pipe.zremrangebyscore(self.keys.heartbeats, "-inf", now - FORGET_AFTER)
                pipe.hdel(self.keys.workers, *forgotten)
                pipe.execute()
            except redis.ResponseError:
                pass  # refused: the next reader that can write drops them
        return result


def is_live(worker: WorkerInfo, interval: float, now: float) -> bool:
    return now - worker.last_beat <= OVERDUE_BEATS * interval
