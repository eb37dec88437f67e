"""What every real IMAP server of the tests offers: loopback address, users, readiness, cleanup.

support.dovecot.Dovecot and support.extra_servers' Cyrus and Courier build on it; a subclass sets
`root`, `port` and `users` (name -> (password, uid)) and implements start() and stop().
"""

from __future__ import annotations

import shutil
import socket

from imapclient import IMAPClient


class ImapServer:
    host = "127.0.0.1"

    def settings(self, user: str) -> dict:
        """IMAP settings of a user, in the shape the accounts API takes (`imap` object)."""
        return {"host": self.host, "port": self.port, "secure": False,
                "auth": {"user": user, "pass": self.users[user][0]}}

    def client(self, user: str) -> IMAPClient:
        client = IMAPClient(self.host, port=self.port, ssl=False, timeout=30)
        client.login(user, self.users[user][0])
        return client

    def _answers(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as s:
                return s.recv(100).startswith(b"* OK")
        except OSError:
            return False

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()
