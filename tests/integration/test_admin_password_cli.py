"""`mailpulse admin password` typed at a real terminal (a pty): asked twice, never echoed."""

from __future__ import annotations

import fcntl
import os
import select
import subprocess
import sys
import termios
import time

import pytest

from shared.keys import Keys
from shared.stores.admin_password import check_password
from support.servers import ROOT


def run_at_terminal(env: dict, answers: list[str]) -> tuple[int, str]:
    """Run the command with a pty as its controlling terminal; answer each prompt in turn."""
    master, slave = os.openpty()

    def take_terminal():
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen([sys.executable, "-m", "shared.cli", "admin", "password"], cwd=ROOT, env=env,
                            stdin=slave, stdout=slave, stderr=slave, preexec_fn=take_terminal)
    os.close(slave)
    output, pending, answered_at = b"", list(answers), 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                break
            output += chunk
            if pending and output[answered_at:].rstrip().endswith(b":"):  # a new prompt
                os.write(master, pending.pop(0).encode() + b"\n")
                answered_at = len(output)
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(10), output.decode(errors="replace")


def test_prompted_twice_and_not_echoed(env, conn):
    code, output = run_at_terminal(env, ["typed at a terminal", "typed at a terminal"])
    assert code == 0, output
    assert "New admin password:" in output and "Repeat it:" in output
    assert "typed at a terminal" not in output
    assert check_password("typed at a terminal", conn.get(Keys().admin_password).decode())


@pytest.mark.parametrize("answers, message", [
    (["first password", "second password"], "the two passwords differ"),
    (["short"], "at least 8 characters"),
])
def test_refused_and_nothing_stored(env, conn, answers, message):
    code, output = run_at_terminal(env, answers)
    assert code == 1 and message in output and "Traceback" not in output
    assert conn.get(Keys().admin_password) is None
