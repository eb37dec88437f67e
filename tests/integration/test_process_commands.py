"""`mailpulse web|imap|webhooks|embedded-redis`: each becomes the process itself (same pid), and a
process started without its settings says which one, in one line, with a non-zero exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from support.servers import base_env, free_port, wait_for

MAILPULSE = str(Path(sys.executable).parent / "mailpulse")


def run(args, env, cwd, timeout=60):
    return subprocess.run([MAILPULSE, *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def bare_env(**settings) -> dict:
    """The environment without any mailpulse setting (as a service manager gives)."""
    env = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8"}
    env.update({k: str(v) for k, v in settings.items()})
    return env


def assert_one_line_error(result, setting: str) -> str:
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if "configuration error" in line]
    assert len(lines) == 1 and f"configuration error: {setting}:" in lines[0], result.stderr
    return lines[0]


@pytest.mark.parametrize("command", ["web", "imap", "webhooks", "embedded-redis"])
def test_started_in_the_root_directory_without_an_app_root(command):
    result = run([command], bare_env(REDIS_URL="redis://127.0.0.1:1/0"), cwd="/")
    assert_one_line_error(result, "MAILPULSE_HOME")


@pytest.mark.parametrize("command", ["imap", "webhooks"])
def test_a_missing_app_root_is_named(command, tmp_path):
    result = run([command], bare_env(MAILPULSE_HOME=tmp_path / "gone"), cwd=tmp_path)
    assert "is not a directory" in assert_one_line_error(result, "MAILPULSE_HOME")


@pytest.mark.parametrize("command", ["web", "webhooks"])
def test_started_where_there_are_no_settings(command, tmp_path):
    assert_one_line_error(run([command], bare_env(), cwd=tmp_path), "REDIS_URL")


def test_the_embedded_redis_serves_only_a_local_address(tmp_path):
    result = run(["embedded-redis"], bare_env(REDIS_URL="redis://:pw@redis.internal:6379/0"), cwd=tmp_path)
    line = assert_one_line_error(result, "REDIS_URL")
    assert "not a local redis://" in line and ":pw@" not in line


def test_the_cli_says_when_it_uses_the_embedded_default(tmp_path):
    (tmp_path / ".env").write_text("REDIS_WAIT_SECONDS=1\n")  # an app root that names no Redis
    result = run(["tokens", "list"], bare_env(MAILPULSE_HOME=tmp_path), cwd="/")
    assert f"using the embedded default Redis redis://127.0.0.1:6479/0 (REDIS_URL is set neither in the " \
           f"environment nor in {tmp_path / '.env'})" in result.stderr
    assert_one_line_error(result, "REDIS_URL")  # and nothing answers there


def test_a_worker_is_the_process_itself(redis_url, tmp_path):
    env = base_env(redis_url, tmp_path)
    with open(tmp_path / "webhooks.log", "wb") as log:
        proc = subprocess.Popen([MAILPULSE, "webhooks"], env=env, cwd=tmp_path, stdout=log, stderr=log)
    try:
        wait_for(lambda: "process started" in (tmp_path / "webhooks.log").read_text(), what="the worker")
        assert f"webhooks process started (pid {proc.pid})" in (tmp_path / "webhooks.log").read_text()
        assert b"workers.webhooks" in Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        proc.send_signal(signal.SIGTERM)  # reaches the worker: it stops cleanly
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "webhooks process stopped" in (tmp_path / "webhooks.log").read_text()


def test_the_embedded_redis_takes_the_password_of_redis_url(tmp_path):
    port = free_port()
    env = bare_env(REDIS_URL=f"redis://:s3cr%40t@127.0.0.1:{port}/0", VAR_DIR=tmp_path / "state")
    proc = subprocess.Popen([MAILPULSE, "embedded-redis"], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL)
    try:
        client = redis.Redis(port=port, password="s3cr@t")

        def answers():
            try:
                return client.ping()
            except redis.ConnectionError:
                return False

        wait_for(answers, what="the embedded Redis")
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port).ping()
        assert b"s3cr" not in Path(f"/proc/{proc.pid}/cmdline").read_bytes()  # the same pid: exec'd
        assert (tmp_path / "state" / "redis" / "mailpulse-redis.conf").stat().st_mode & 0o777 == 0o600
        client.set("kept", "1")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (tmp_path / "state" / "redis" / "mailpulse.rdb").exists()  # saved on the way out
