"""Real Cyrus and Courier IMAP servers on free loopback ports, from Debian's packages unpacked by
bin/unpack-imap-servers into ROOT (DESIGN section 7), each in a temp dir of its own.

Both offer what support.dovecot.Dovecot offers the tests (`host`, `port`, `add_user`, `settings`,
`client`, `append`, `close`), plus `folder(name)`: the full path of a top-level folder as the
server names it (Courier keeps every folder under `INBOX.`).

- Cyrus: `master` with its own imapd.conf/cyrus.conf, users in a sasldb of its own
  (`saslpasswd2`), INBOX created at the first login, `/` as separator, CONDSTORE and QRESYNC.
  IDLE checks the mailbox every second (`imapidlepoll: 1`: `idled` runs, but Cyrus 3.6 notifies
  it only with mailbox events configured). It runs as `nobody` (`cyrus_user`).
- Courier: compiled-in paths (/etc/courier, /run/courier, /usr/lib/courier), so it runs in a
  mount namespace of its own (`unshare -m`) where /etc and /usr are overlays of the unpacked
  package over the system's and /run is private; users in a userdb (`makeuserdb`); no CONDSTORE;
  IDLE checks the mailbox every IMAP_IDLE_TIMEOUT seconds (1 here). Stopped by ending every
  process of that namespace.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from .dovecot import FIRST_UID, Dovecot
from .imap_server import ImapServer
from .servers import ROOT as PROJECT
from .servers import free_port, wait_for

ROOT = PROJECT / ".cache" / "imap-servers" / "root"
LIBRARIES = ROOT / "usr" / "lib" / "x86_64-linux-gnu"


def _unpacked(path: Path) -> Path:
    assert path.exists(), f"{path} is missing: run bin/unpack-imap-servers (bin/test does)"
    return path


class _Server(ImapServer):
    """What Cyrus and Courier share beyond ImapServer: a temp dir, a port, mail through IMAP."""

    prefix = ""  # of top-level folder names

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix=f"mailpulse-{type(self).__name__.lower()}-"))
        self.root.chmod(0o755)
        self.port = free_port()
        self.users: dict[str, tuple[str, int]] = {}

    def folder(self, name: str) -> str:
        return self.prefix + name

    def append(self, user: str, subject: str = "Hello", folder: str = "INBOX", **kwargs) -> int | None:
        with self.client(user) as client:
            return Dovecot.append_with(client, subject, kwargs.get("sender", "Bob <bob@example.com>"),
                                       f"{user}@example.com", folder=folder)


class Cyrus(_Server):
    def __init__(self, idle: bool = True):
        """idle=False: a server without IDLE (imapidlepoll 0, no idled)."""
        super().__init__()
        self.bin = _unpacked(ROOT / "usr" / "lib" / "cyrus" / "bin")
        self.proc: subprocess.Popen | None = None
        r = self.root
        for sub in ("config", "spool", "socket"):
            (r / sub).mkdir()
        (r / "imapd.conf").write_text(f"""\
configdirectory: {r}/config
partition-default: {r}/spool
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: {r}/sasldb2
sasl_mech_list: PLAIN LOGIN
allowplaintext: yes
unixhierarchysep: yes
autocreate_quota: 0
cyrus_user: nobody
idlesocket: {r}/socket/idle
notifysocket: {r}/socket/notify
lmtpsocket: {r}/socket/lmtp
servername: localhost
syslog_prefix: mailpulse-cyrus-{self.port}
imapidlepoll: {1 if idle else 0}
""")
        conf = f"-C {r}/imapd.conf"
        (r / "cyrus.conf").write_text(f"""\
START {{
  recover cmd="{self.bin}/ctl_cyrusdb {conf} -r"
}}
SERVICES {{
  imap cmd="{self.bin}/imapd {conf}" listen="127.0.0.1:{self.port}" prefork=1
}}
DAEMON {{
  {f'idled cmd="{self.bin}/idled {conf}"' if idle else ""}
}}
""")

    def _env(self) -> dict:
        return dict(os.environ, LD_LIBRARY_PATH=str(LIBRARIES))

    def start(self) -> None:
        subprocess.run(["chown", "-R", "nobody:nogroup", str(self.root)], check=True)
        self.proc = subprocess.Popen(
            [str(self.bin / "master"), "-C", str(self.root / "imapd.conf"),
             "-M", str(self.root / "cyrus.conf"), "-p", str(self.root / "master.pid")],
            env=self._env(), stdout=subprocess.DEVNULL,
            stderr=open(self.root / "master.log", "ab"), start_new_session=True)

        def ready():
            assert self.proc.poll() is None, f"cyrus master exited: {self.log()}"
            return self._answers()

        wait_for(ready, timeout=30, what=f"cyrus to answer on port {self.port}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # master and its services
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)

    def log(self) -> str:
        path = self.root / "master.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def add_user(self, user: str, password: str) -> None:
        saslpasswd2 = str(_unpacked(ROOT / "usr" / "sbin" / "saslpasswd2"))
        subprocess.run([saslpasswd2, "-f", str(self.root / "sasldb2"), "-u", "localhost", "-c", "-p", user],
                       input=password.encode(), check=True, env=self._env())
        os.chown(self.root / "sasldb2", _uid("nobody"), -1)
        self.users[user] = (password, 0)

    def set_password(self, user: str, password: str) -> None:
        self.add_user(user, password)


class Courier(_Server):
    prefix = "INBOX."

    def __init__(self, capability: str = "IMAP4rev1 UIDPLUS CHILDREN NAMESPACE IDLE"):
        super().__init__()
        self.pkg = _unpacked(ROOT)
        self.namespace: str | None = None
        r = self.root
        for sub in ("etc-up", "etc-work", "usr-up", "usr-work", "home"):
            (r / sub).mkdir()
        (r / "home").chmod(0o755)
        (r / "etc-up" / "courier").mkdir()
        (r / "etc-up" / "courier" / "userdb").write_text("")
        (r / "etc-up" / "courier" / "authdaemonrc").write_text(
            'authmodulelist="authuserdb"\ndaemons=3\nauthdaemonvar=/run/courier/authdaemon\n'
            'DEBUG_LOGIN=0\nDEFAULTOPTIONS=""\nLOGGEROPTS=""\n')
        settings = {"ADDRESS": "127.0.0.1", "PORT": str(self.port), "MAXPERIP": "1000",
                    "IMAP_CAPABILITY": f'"{capability}"', "IMAP_IDLE_TIMEOUT": "1",
                    "IMAP_ENHANCEDIDLE": "0", "IMAPDSTART": "YES", "IMAP_USELOCKS": "0"}
        original = (ROOT / "etc" / "courier" / "imapd").read_text().splitlines()
        lines = [f"{line.split('=', 1)[0]}={settings.pop(line.split('=', 1)[0])}"
                 if "=" in line and line.split("=", 1)[0] in settings else line for line in original]
        lines += [f"{k}={v}" for k, v in settings.items()]
        (r / "etc-up" / "courier" / "imapd").write_text("\n".join(lines) + "\n")
        ssl = (ROOT / "etc" / "courier" / "imapd-ssl").read_text()
        no_tls = ssl.replace("IMAPDSTARTTLS=YES", "IMAPDSTARTTLS=NO")  # no certificate: no STARTTLS offered
        (r / "etc-up" / "courier" / "imapd-ssl").write_text(no_tls)
        (r / "start.sh").write_text(f"""\
set -e
mount --make-rprivate /
mount -t overlay overlay -o lowerdir={ROOT}/etc:/etc,upperdir={r}/etc-up,workdir={r}/etc-work /etc
mount -t overlay overlay -o lowerdir={ROOT}/usr:/usr,upperdir={r}/usr-up,workdir={r}/usr-work /usr
mount -t tmpfs tmpfs /run
mkdir -p /run/courier/authdaemon
readlink /proc/self/ns/mnt > {r}/namespace
chmod 600 /etc/courier/userdb
/usr/sbin/makeuserdb
/usr/sbin/authdaemond start
/usr/sbin/imapd start >/dev/null 2>&1
""")

    def start(self) -> None:
        result = subprocess.run(["unshare", "-m", "bash", str(self.root / "start.sh")], capture_output=True)
        assert result.returncode == 0, f"courier did not start: {result.stderr.decode(errors='replace')}"
        self.namespace = (self.root / "namespace").read_text().strip()
        wait_for(self._answers, timeout=30, what=f"courier to answer on port {self.port}")

    def _pids(self) -> list[int]:
        pids = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.readlink(f"/proc/{entry}/ns/mnt") == self.namespace:
                        pids.append(int(entry))
                except OSError:
                    continue
        return pids

    def stop(self) -> None:
        if not self.namespace:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in self._pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 5
            while self._pids() and time.monotonic() < deadline:
                time.sleep(0.05)
        self.namespace = None

    def add_user(self, user: str, password: str) -> None:
        known = self.users.get(user)
        uid = known[1] if known else FIRST_UID + 500 + len(self.users)  # clear of support.dovecot's
        home = self.root / "home" / user
        for sub in ("cur", "new", "tmp"):
            (home / "Maildir" / sub).mkdir(parents=True, exist_ok=True)
        subprocess.run(["chown", "-R", f"{uid}:{uid}", str(home)], check=True)
        digest = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password.encode(),
                                capture_output=True, check=True).stdout.decode().strip()
        self.users[user] = (password, uid)
        home = self.root / "home"
        lines = [f"{u}\tuid={i}|gid={i}|home={home / u}|mail={home / u / 'Maildir'}|systempw={d}\n"
                 for u, (_, i), d in self._entries(user, digest)]
        (self.root / "etc-up" / "courier" / "userdb").write_text("".join(lines))
        if self.namespace:
            pid = self._pids()[0]
            subprocess.run(["nsenter", "-m", "-t", str(pid), "/usr/sbin/makeuserdb"], check=True)

    def _entries(self, user: str, digest: str):
        self._digests = getattr(self, "_digests", {})
        self._digests[user] = digest
        return [(u, self.users[u], self._digests[u]) for u in self.users]

    def set_password(self, user: str, password: str) -> None:
        self.add_user(user, password)


def _uid(name: str) -> int:
    import pwd

    return pwd.getpwnam(name).pw_uid
