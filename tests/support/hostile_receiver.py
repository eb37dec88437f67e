"""A webhook receiver that answers with markup everywhere a receiver can put text.

A raw TCP server (stdlib http.server would refuse to write such a status line): per request it
reads the headers and body, then writes the answer `answers[path]` picks, byte for byte.
"""

from __future__ import annotations

import socket
import threading


class HostileReceiver:
    def __init__(self, answers: dict[str, bytes]):
        self.answers = answers
        self.requests: list[str] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.sock.close()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(client,), daemon=True).start()

    def _answer(self, client: socket.socket) -> None:
        with client:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = client.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            while len(body) < length:
                body += client.recv(65536)
            path = head.split(b" ")[1].decode()
            self.requests.append(path)
            try:
                client.sendall(self.answers[path])
            except OSError:
                pass  # the client closed early: it reads a bounded part only
