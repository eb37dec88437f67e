"""A TCP proxy on a free loopback port that the test can cut: a network path that goes dead.

    proxy = TcpProxy(6379); proxy.start()      # connect to ("127.0.0.1", proxy.port)
    proxy.cut()       # open connections hang (nothing forwarded), new ones are accepted and hang
    proxy.restore()   # hung connections are closed, new ones are forwarded again

It stands for "this host cannot reach Redis" while the test itself (and other processes) still can.
"""

from __future__ import annotations

import socket
import threading

from .servers import free_port


class TcpProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self.port = free_port()
        self.lock = threading.Lock()
        self.dead = False
        self.pairs: list[tuple[socket.socket, socket.socket | None]] = []
        self.listener: socket.socket | None = None

    def start(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        with self.lock:
            self.dead = True
            for _, upstream in self.pairs:
                if upstream is not None:
                    _close(upstream)  # the client side stays open: its reads hang until they time out

    def restore(self) -> None:
        with self.lock:
            self.dead = False
            for client, _ in self.pairs:
                _close(client)
            self.pairs = []

    def close(self) -> None:
        self.restore()
        if self.listener is not None:
            _close(self.listener)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                if self.dead:
                    self.pairs.append((client, None))
                    continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            with self.lock:
                self.pairs.append((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data or self.dead:
                    break
                sink.sendall(data)
        except OSError:
            pass
        if not self.dead:
            _close(sink)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
