"""A real Postfix (Debian) on a free loopback port, in its own directories, relaying every message
over LMTP into a Dovecot (support.dovecot.Dovecot with lmtp=True): the MTA of the sending tests.

A private instance: its own config_directory (main.cf, master.cf), queue_directory and
data_directory under a temp dir, started with `postfix -c DIR start`; the system's Postfix (if
any) is never touched. Postfix insists that a non-default configuration directory be named in
the default main.cf (`alternate_config_directories`); the instance adds itself there and removes
itself at stop.

    mta = Postfix(lmtp_port=dovecot.lmtp_port); mta.start()
    ... smtp to 127.0.0.1:mta.port ...
    mta.close()

`settings` overrides or adds main.cf parameters (bench/submit.py's accept-only variant:
`{"default_transport": "discard", ...}`). Each is written once, in place: a parameter named twice
in main.cf makes every daemon log a warning at start, and postlogd, logging its own warning into
its own socket before it reads it, deadlocks (postqueue and showq then hang).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from .servers import free_port, wait_for

DEFAULT_MAIN_CF = Path("/etc/postfix/main.cf")

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mta.mailpulse.test
mydomain = mailpulse.test
myorigin = $myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
local_recipient_maps =
relay_domains =
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions = permit_mynetworks, reject
default_transport = lmtp:inet:127.0.0.1:{lmtp_port}
relay_transport = lmtp:inet:127.0.0.1:{lmtp_port}
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
smtputf8_enable = yes
smtpd_banner = $myhostname ESMTP mailpulse-test
message_size_limit = 20480000
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
alias_maps =
alias_database =
biff = no
"""

# A shortened master.cf: the SMTP listener on our port, and the services a relay needs.
MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def _main_cf(text: str, settings: dict[str, str]) -> str:
    """`text` with each of `settings` replacing its line, or appended: never a parameter twice."""
    lines, left = [], dict(settings)
    for line in text.splitlines():
        name = line.split("=", 1)[0].strip()
        lines.append(f"{name} = {left.pop(name)}" if name in left else line)
    return "\n".join(lines + [f"{name} = {value}" for name, value in left.items()]) + "\n"


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            return s.recv(100).startswith(b"220")
    except OSError:
        return False


class Postfix:
    def __init__(self, lmtp_port: int, settings: dict[str, str] | None = None):
        self.root = Path(tempfile.mkdtemp(prefix="mailpulse-postfix-"))
        self.root.chmod(0o755)
        self.config_dir = self.root / "etc"
        self.config_dir.mkdir()
        (self.root / "queue").mkdir()  # its subdirectories: `postfix check` makes them
        (self.root / "data").mkdir()
        shutil.chown(self.root / "data", "postfix", "postfix")  # master's lock file
        self.port = free_port()
        (self.config_dir / "main.cf").write_text(_main_cf(MAIN_CF.format(root=self.root, lmtp_port=lmtp_port),
                                                          settings or {}))
        (self.config_dir / "master.cf").write_text(MASTER_CF.format(port=self.port))
        # Postfix's own scripts (post-install, set-permissions) are looked up in daemon_directory's
        # shared files; meta_directory points at the system's postfix-files.
        with open(self.config_dir / "main.cf", "a") as f:
            f.write("meta_directory = /etc/postfix\nshlib_directory = /usr/lib/postfix\n")
        shutil.copy("/etc/postfix/dynamicmaps.cf", self.config_dir / "dynamicmaps.cf")

    def _postfix(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["postfix", "-c", str(self.config_dir), *args], capture_output=True,
                              text=True, timeout=60)

    def _register(self, add: bool) -> None:
        """Name (or stop naming) our config directory in the default main.cf, as Postfix demands."""
        current = subprocess.run(["postconf", "-h", "alternate_config_directories"], capture_output=True,
                                 text=True).stdout.split()
        wanted = [d for d in current if d != str(self.config_dir)] + ([str(self.config_dir)] if add else [])
        subprocess.run(["postconf", "-e", f"alternate_config_directories = {' '.join(wanted)}"], check=True)

    def start(self) -> None:
        assert shutil.which("postfix"), "postfix is not installed (bin/test installs it)"
        self._register(True)
        self._postfix("check")
        result = self._postfix("start")
        assert result.returncode == 0, f"postfix start failed: {result.stdout}{result.stderr}{self.log()}"
        wait_for(lambda: _answers(self.port), timeout=30, what=f"postfix to answer on port {self.port}")

    def stop(self) -> None:
        self._postfix("stop")
        wait_for(lambda: not _answers(self.port), timeout=20, what="postfix to stop")

    def log(self) -> str:
        path = self.root / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""

    def queued(self) -> str:
        """What is in the queue (postqueue -p)."""
        return subprocess.run(["postqueue", "-c", str(self.config_dir), "-p"], capture_output=True,
                              text=True).stdout

    def close(self) -> None:
        try:
            self.stop()
        finally:
            self._register(False)
            shutil.rmtree(self.root, ignore_errors=True)
