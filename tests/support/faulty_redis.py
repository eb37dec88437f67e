"""A real redis-server that can be made to refuse, the ways production Redis refuses.

- MISCONF: its data directory is a tmpfs of its own; remounted read-only, a BGSAVE fails and
  (stop-writes-on-bgsave-error yes, with save points set) every write is refused until a save
  succeeds;
- OOM: maxmemory 1 byte with noeviction: every write that may grow memory is refused;
- NOPERM: an ACL user without some commands (REDIS_URL with that user's name and password).
The tests run as root, as .ci/run does (mount needs it).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import redis

from .servers import RedisServer, wait_for

ACL_USER, ACL_PASSWORD = "mailpulse", "acl-test-password"


class FaultyRedis(RedisServer):
    def __init__(self, directory: Path):
        self.mount = directory / "data"
        self.mount.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(self.mount)], check=True)
        super().__init__(self.mount)
        self.client = redis.Redis(port=self.port)

    def start(self) -> None:
        assert shutil.which("redis-server")
        super().start()
        self.client.config_set("stop-writes-on-bgsave-error", "yes")
        self.client.config_set("save", "3600 1")  # refusals apply only with save points set

    def close(self) -> None:
        self.stop()
        subprocess.run(["umount", "-l", str(self.mount)], check=False)

    def user_url(self) -> str:
        """REDIS_URL of the ACL user (made with every command allowed: see forbid())."""
        return f"redis://{ACL_USER}:{ACL_PASSWORD}@127.0.0.1:{self.port}/0"

    def reset(self) -> None:
        self.client.config_set("maxmemory", 0)
        self.cure_misconf()
        self.client.acl_setuser(ACL_USER, enabled=True, reset=True, passwords=[f"+{ACL_PASSWORD}"],
                                keys=["*"], channels=["*"], commands=["+@all"])
        self.client.flushall()

    # -- the refusals ----------------------------------------------------------------------------
    def misconf(self) -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(self.mount)], check=True)
        self.client.bgsave()
        wait_for(lambda: self.client.info("persistence")["rdb_last_bgsave_status"] == "err",
                 what="the BGSAVE to fail")

    def cure_misconf(self) -> None:
        subprocess.run(["mount", "-o", "remount,rw", str(self.mount)], check=True)
        if self.client.info("persistence")["rdb_last_bgsave_status"] == "ok":
            return
        wait_for(lambda: self.client.info("persistence")["rdb_bgsave_in_progress"] == 0,
                 what="no save running")
        self.client.bgsave()
        wait_for(lambda: self.client.info("persistence")["rdb_last_bgsave_status"] == "ok",
                 what="a BGSAVE to succeed")

    def oom(self) -> None:
        self.client.config_set("maxmemory", 1)  # every write is refused with OOM (noeviction)

    def cure_oom(self) -> None:
        self.client.config_set("maxmemory", 0)

    def forbid(self, *commands: str) -> None:
        self.client.acl_setuser(ACL_USER, enabled=True, commands=[f"-{c}" for c in commands])

    def allow(self, *commands: str) -> None:
        self.client.acl_setuser(ACL_USER, enabled=True, commands=[f"+{c}" for c in commands])
