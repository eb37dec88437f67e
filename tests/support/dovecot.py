"""A real Dovecot IMAP server on a free loopback port, in its own temp dir (DESIGN section 7).

Users live in a passwd-file with a uid of their own each (the kernel allows 128 inotify
instances per uid: with one shared uid, IDLE sessions past 128 silently fall back to polling).
Dovecot re-reads the passwd-file when it changes, so users can be added while it runs.

    server = Dovecot(); server.start()
    server.add_user("alice", "secret")
    server.append("alice", "secret", subject="Hello", sender="bob@example.com")
    server.stop(); server.start()   # same port, same mail
"""

from __future__ import annotations

import email.utils
import os
import signal
import subprocess
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

from imapclient import IMAPClient

from .imap_server import ImapServer
from .servers import free_port, wait_for

FIRST_UID = 20000  # users' uids: first_valid_uid is 100, and these collide with no system user
DOVECOT = "/usr/sbin/dovecot"

CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
instance_name = mailpulse-test-{port}
protocols = {protocols}
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = 100
mail_location = maildir:~/Maildir
mail_fsync = never
mail_max_userip_connections = 1000
default_process_limit = 5000
default_client_limit = 10000
default_vsz_limit = 512M
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/users
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  # performance mode: a few long-lived login processes instead of one per connection
  service_count = 0
  process_min_avail = 2
}}
service imap {{
  process_limit = 5000
}}
service anvil {{
  client_limit = 20000
}}
service stats {{
  client_limit = 20000
}}
"""


# Recipients are users by their full address (`ann@example.test` is a user of that name).
LMTP_CONFIG = """\
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {port}
  }}
}}
"""


def _children(pid: int) -> list[int]:
    """Pids of the direct children of `pid` (Dovecot's services), from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


class Dovecot(ImapServer):
    """One Dovecot instance. `host`/`port` to connect; users added with add_user()."""

    def __init__(self, directory: Path | None = None, extra_config: str = "", lmtp: bool = False):
        """extra_config: lines appended to dovecot.conf (e.g. `imap_capability = ...`); lmtp: also
        an LMTP listener on `lmtp_port` (for an MTA's deliveries, support.postfix)."""
        # Not under pytest's tmp_path: that is mode 0700, and Dovecot's unprivileged processes
        # (dovenull, dovecot, the users' uids) must traverse to their sockets and mail.
        self.root = Path(directory or tempfile.mkdtemp(prefix="mailpulse-dovecot-"))
        self.root.chmod(0o755)
        self.host = "127.0.0.1"
        self.port = free_port()
        self.users: dict[str, tuple[str, int]] = {}
        self.proc: subprocess.Popen | None = None
        for sub in ("run", "state", "home"):
            (self.root / sub).mkdir(exist_ok=True)
            (self.root / sub).chmod(0o755)
        (self.root / "users").write_text("")
        self.lmtp_port = free_port() if lmtp else None
        config = CONFIG.format(root=self.root, port=self.port, protocols="imap lmtp" if lmtp else "imap")
        if lmtp:
            config += LMTP_CONFIG.format(port=self.lmtp_port)
        config += extra_config + "\n"
        (self.root / "dovecot.conf").write_text(config)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        assert os.path.exists(DOVECOT), "dovecot is not installed (bin/test installs dovecot-imapd)"
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", str(self.root / "dovecot.conf")],
                                     stdout=subprocess.DEVNULL, stderr=open(self.root / "stderr.log", "ab"))
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"dovecot exited: {self.log()[-2000:]}")
            return self._answers()

        wait_for(ready, timeout=30, what=f"dovecot to answer on port {self.port}")

    def stop(self) -> None:
        """Stop the server and end every session, as a server going down would."""
        if self.proc and self.proc.poll() is None:
            children = _children(self.proc.pid)
            self.proc.terminate()
            self.proc.wait(20)
            # The master leaves imap processes serving their connections for a while: end them.
            for pid in children:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        wait_for(lambda: not self._answers(), timeout=10, what="dovecot to stop listening")

    def log(self) -> str:
        parts = []
        for name in ("stderr.log", "dovecot.log"):
            path = self.root / name
            if path.exists():
                parts.append(path.read_text(errors="replace"))
        return "\n".join(parts)

    # -- users -------------------------------------------------------------------------------

    def add_user(self, user: str, password: str) -> None:
        """A user with its own uid and home; usable at once (the passwd-file is re-read)."""
        self.add_users({user: password})

    def add_users(self, passwords: dict[str, str]) -> None:
        """Many users at once (the passwd-file written once)."""
        for user, password in passwords.items():
            uid = FIRST_UID + len(self.users)
            home = self.root / "home" / user
            home.mkdir(exist_ok=True)
            os.chown(home, uid, uid)
            self.users[user] = (password, uid)
        self._write_users()

    def set_password(self, user: str, password: str) -> None:
        self.users[user] = (password, self.users[user][1])
        self._write_users()

    def _write_users(self) -> None:
        lines = [f"{u}:{{PLAIN}}{pw}:{uid}:{uid}::{self.root / 'home' / u}::\n"
                 for u, (pw, uid) in self.users.items()]
        tmp = self.root / "users.tmp"
        tmp.write_text("".join(lines))
        tmp.replace(self.root / "users")  # atomic: Dovecot never reads half a file
        # Dovecot notices a changed passwd-file by its mtime (1 s resolution on some filesystems).
        stamp = time.time() + 1
        os.utime(self.root / "users", (stamp, stamp))

    # -- mail --------------------------------------------------------------------------------

    def append(self, user: str, subject: str = "Hello", sender: str = "Bob <bob@example.com>",
               to: str = "", body: str = "Hi.\n", folder: str = "INBOX", flags=()) -> int | None:
        """APPEND one message as the user; returns its UID (UIDPLUS) or None."""
        with self.client(user) as client:
            return self.append_with(client, subject, sender, to or f"{user}@example.com", body, folder, flags)

    def deliver(self, user: str, subject: str, sender: str = "Bob <bob@example.com>") -> None:
        """Drop a message into the user's Maildir as a delivery agent would; works while Dovecot is
        stopped (the user must have logged in once, so that the Maildir exists)."""
        self.deliver_many(user, [subject], sender)

    def deliver_many(self, user: str, subjects: list[str], sender: str = "Bob <bob@example.com>") -> None:
        """Deliver messages all at once: written to tmp/ first, then moved into new/ together (so
        that one sync finds them all)."""
        maildir = self.root / "home" / user / "Maildir"
        uid = self.users[user][1]
        names = []
        for n, subject in enumerate(subjects):
            msg = EmailMessage()
            msg["Subject"], msg["From"], msg["To"] = subject, sender, f"{user}@example.com"
            msg["Date"] = email.utils.formatdate(localtime=False)
            msg["Message-ID"] = email.utils.make_msgid(domain="mailpulse.test")
            msg.set_content("Delivered.\n")
            name = f"{time.time():.6f}.{os.getpid()}_{n}_{len(subject)}.mailpulse-test"
            tmp = maildir / "tmp" / name
            tmp.write_bytes(msg.as_bytes())
            os.chown(tmp, uid, uid)
            names.append(name)
        for name in names:
            (maildir / "tmp" / name).rename(maildir / "new" / name)

    @staticmethod
    def append_with(client: IMAPClient, subject: str, sender: str, to: str, body: str = "Hi.\n",
                    folder: str = "INBOX", flags=()) -> int | None:
        msg = EmailMessage()
        msg["Subject"] = subject
        msg["From"] = sender
        msg["To"] = to
        msg["Date"] = email.utils.formatdate(localtime=False)
        msg["Message-ID"] = email.utils.make_msgid(domain="mailpulse.test")
        msg.set_content(body)
        reply = client.append(folder, msg.as_bytes(), flags=flags)
        # b'[APPENDUID 1700000000 5] Append completed.'
        text = reply.decode() if isinstance(reply, bytes) else str(reply)
        if text.startswith("[APPENDUID"):
            return int(text.split()[2].rstrip("]"))
        return None
