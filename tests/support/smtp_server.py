"""A scriptable SMTP server on loopback (aiosmtpd in its own thread) for failures an MTA won't
make on demand: temporary and permanent replies, slow answers, dropped connections.

    with ScriptedSmtp(["451 4.3.0 Try again later", "250 OK"]) as smtp:   # per message, in order
        ...                                   # then 250 for the rest
    smtp.messages    # what it accepted or was handed (raw bytes, envelope), in order
    smtp.sessions    # connections made

A script step is a reply line ("250 ...", "451 ...", "550 ..."), or ("slow", seconds, reply),
or "drop" (close the connection in the middle of DATA, with no reply).
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

from aiosmtpd.controller import Controller

from .servers import free_port


@dataclass
class Handed:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    reply: str


class _Handler:
    def __init__(self, owner: ScriptedSmtp):
        self.owner = owner

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        with self.owner.lock:
            self.owner.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server, session, envelope):
        step = self.owner.next_step()
        with self.owner.lock:
            self.owner.started += 1
        if step == "drop":
            self.owner._record(envelope, "dropped")
            server.transport.close()
            return "421 closing"  # never reaches the client: the connection is gone
        if isinstance(step, tuple):
            _, seconds, step = step
            await asyncio.sleep(seconds)
        self.owner._record(envelope, step)
        return step


class ScriptedSmtp:
    def __init__(self, script=(), auth: dict[str, str] | None = None):
        self.script = list(script)
        self.lock = threading.Lock()
        self.messages: list[Handed] = []
        self.sessions = 0
        self.started = 0  # DATA phases begun
        self.port = free_port()
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port,
                                     ready_timeout=10)

    def next_step(self):
        with self.lock:
            return self.script.pop(0) if self.script else "250 2.0.0 OK queued"

    def _record(self, envelope, reply: str) -> None:
        with self.lock:
            self.messages.append(Handed(envelope.mail_from, list(envelope.rcpt_tos), envelope.content, reply))

    def accepted(self) -> list[Handed]:
        with self.lock:
            return [m for m in self.messages if m.reply.startswith("250")]

    def settings(self) -> dict:
        """The `smtp` object of an account sending through this server."""
        return {"host": "127.0.0.1", "port": self.port, "secure": False}

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()
