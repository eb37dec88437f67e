"""The rq queue `submit`: messages waiting to be sent, and the outbox view of them.

A message is one rq job in `<REDIS_PREFIX>submit` whose id is the API's `queueId`. Its args carry
the finished MIME (shared/mail/outgoing.py), its meta the outbox summary (account, messageId,
subject, to, created, scheduled, attempts, nextAttempt, lastError), so that listing the outbox
never unpickles messages. States, as rq-dashboard shows them: queued (the list), scheduled
(`sendAt` later, or waiting for a retry: rq's ScheduledJobRegistry, scored by due time), started
(rq's StartedJobRegistry, `<id>:<execution>` scored by lease expiry), finished, failed.
The submit workers (workers/submit) move jobs between them; this module is the web's side.
"""

from __future__ import annotations

import base64
import datetime
import pickle
import time
import uuid

import redis
from rq import Queue
from rq.job import Job
from rq.registry import ScheduledJobRegistry, StartedJobRegistry

from ..keys import Keys

DELIVER = "workers.submit.delivery.deliver"  # the job function; the submit worker runs attempts itself
JOB_KEY_PREFIX = Job.redis_job_namespace_prefix

# Cancel a message only while no worker holds it. KEYS: queue list, scheduled zset, job hash.
# ARGV: id. Returns 1 cancelled, 0 unknown, 2 being sent now, 3 already finished or failed.
_CANCEL = """
local removed = redis.call('LREM', KEYS[1], 0, ARGV[1]) + redis.call('ZREM', KEYS[2], ARGV[1])
if removed > 0 then
  redis.call('DEL', KEYS[3])
  return 1
end
local status = redis.call('HGET', KEYS[3], 'status')
if not status then return 0 end
if status == 'started' then return 2 end
return 3
"""
CANCELLED, UNKNOWN, SENDING, DONE = 1, 0, 2, 3
PENDING_STATES = ("queued", "scheduled", "started")


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    when = datetime.datetime.fromtimestamp(ts, datetime.UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SubmitQueue:
    def __init__(self, conn: redis.Redis, keys: Keys):
        self.conn = conn
        self.queue = Queue(keys.queue("submit"), connection=conn)
        self.scheduled = ScheduledJobRegistry(queue=self.queue)
        self.started = StartedJobRegistry(queue=self.queue)
        self._cancel = conn.register_script(_CANCEL)

    def enqueue(self, account: str, raw: bytes, envelope_from: str, recipients: list[str], summary: dict,
                send_at: float | None, copy: bool | None, answers: dict | None = None) -> tuple[str, float]:
        """Queue one message; returns (queueId, when it is due). A past or absent sendAt is now.
        `answers`: the message id params of the original of a reply, flagged \\Answered once sent."""
        now = time.time()
        due = send_at if send_at and send_at > now else now
        queue_id = uuid.uuid4().hex[:24]
        payload = {"account": account, "queueId": queue_id, "messageId": summary["messageId"],
                   "envelope": {"from": envelope_from, "to": recipients},
                   "raw": base64.b64encode(raw).decode(), "copy": copy}
        if answers is not None:
            payload["answers"] = answers
        meta = dict(summary, account=account, created=now, scheduled=due, attempts=0, nextAttempt=due,
                    lastError=None)
        description = f"submit {account} {summary['messageId']}"
        if due > now:
            self.queue.enqueue_at(datetime.datetime.fromtimestamp(due, datetime.UTC), DELIVER, payload,
                                  job_id=queue_id, meta=meta, description=description)
        else:
            self.queue.enqueue(DELIVER, payload, job_id=queue_id, meta=meta, description=description)
        return queue_id, due

    # -- the outbox -----------------------------------------------------------------------------
    def pending_ids(self) -> list[str]:
        """Ids of every message not yet sent or failed for good: being sent, queued, scheduled."""
        ids = [entry.decode().rsplit(":", 1)[0] for entry in self.conn.zrange(self.started.key, 0, -1)]
        ids += [i.decode() for i in self.conn.lrange(self.queue.key, 0, -1)]
        ids += [i.decode() for i in self.conn.zrange(self.scheduled.key, 0, -1)]
        return list(dict.fromkeys(ids))

    def entries(self, ids: list[str]) -> list[dict | None]:
        pipe = self.conn.pipeline(transaction=False)
        for queue_id in ids:
            pipe.hmget(JOB_KEY_PREFIX + queue_id, "meta", "status")
        return [self._entry(queue_id, meta, status)
                for queue_id, (meta, status) in zip(ids, pipe.execute(), strict=True)]

    def list(self, page: int, page_size: int) -> dict:
        found = [e for e in self.entries(self.pending_ids()) if e is not None]
        found.sort(key=lambda e: (e["created"], e["queueId"]))
        total = len(found)
        return {"total": total, "page": page, "pages": max(1, -(-total // page_size)),
                "messages": found[page * page_size:(page + 1) * page_size]}

    def get(self, queue_id: str) -> dict | None:
        return self.entries([queue_id])[0] if valid_queue_id(queue_id) else None

    def cancel(self, queue_id: str) -> int:
        if not valid_queue_id(queue_id):
            return UNKNOWN
        return self._cancel(keys=[self.queue.key, self.scheduled.key, JOB_KEY_PREFIX + queue_id],
                            args=[queue_id])

    @staticmethod
    def _entry(queue_id: str, raw_meta: bytes | None, status: bytes | None) -> dict | None:
        if raw_meta is None:
            return None
        meta = pickle.loads(raw_meta)  # rq's default serializer, written by rq and by the worker
        state = (status or b"").decode()
        return {
            "queueId": queue_id, "account": meta.get("account"), "messageId": meta.get("messageId"),
            "subject": meta.get("subject"), "to": meta.get("to", []), "status": state,
            "created": iso(meta.get("created")), "scheduled": iso(meta.get("scheduled")),
            "attemptsMade": meta.get("attempts", 0),
            "nextAttempt": iso(meta.get("nextAttempt")) if state in PENDING_STATES else None,
            "lastError": meta.get("lastError"),
        }


def valid_queue_id(queue_id: str) -> bool:
    return 0 < len(queue_id) <= 64 and queue_id.isalnum()
