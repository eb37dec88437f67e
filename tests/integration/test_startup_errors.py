"""Bad configuration: one line naming the setting, a non-zero exit, never a traceback."""

import socket
import subprocess
import sys

import pytest

from shared.keys import Keys
from support.servers import ROOT, base_env, free_port, wait_for

ENTRY_POINTS = ("web", "workers.imap", "workers.webhooks")


def run(module, env, timeout=60):
    return subprocess.run([sys.executable, "-m", module], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def assert_one_line_error(result, setting):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "configuration error" in line]
    assert len(errors) == 1 and f"configuration error: {setting}:" in errors[0], result.stderr


@pytest.mark.parametrize("module", ENTRY_POINTS)
@pytest.mark.parametrize("setting, value", [
    ("REDIS_URL", "redis://localhost:notaport/0"),
    ("REDIS_URL", "mysql://localhost/0"),
    ("PROMETHEUS_MULTIPROC_DIR", "/etc/hostname/metrics"),
    ("HEARTBEAT_INTERVAL", "-1"),
])
def test_bad_setting(redis_url, tmp_path, module, setting, value):
    assert_one_line_error(run(module, base_env(redis_url, tmp_path, **{setting: value})), setting)


@pytest.mark.parametrize("value", ["abc", "0", "99999"])
def test_bad_port(redis_url, tmp_path, value):
    assert_one_line_error(run("web", base_env(redis_url, tmp_path, PORT=value)), "PORT")


def test_port_taken(redis_url, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("web", base_env(redis_url, tmp_path, PORT=port))
    assert_one_line_error(result, "PORT")
    assert "in use" in result.stderr


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_redis_never_answers(tmp_path, module):
    env = base_env(f"redis://:secretpw@127.0.0.1:{free_port()}/0", tmp_path, REDIS_WAIT_SECONDS="1")
    result = run(module, env)
    assert_one_line_error(result, "REDIS_URL")
    assert "waiting for Redis" in result.stderr and "secretpw" not in result.stderr


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_help(module):
    result = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0 and "usage:" in result.stdout


def test_secret_differing_from_the_other_processes_refuses_to_start(redis_url, conn, tmp_path, spawn):
    spawn("workers.webhooks", base_env(redis_url, tmp_path / "a", SERVICE_SECRET="one-secret"))
    wait_for(lambda: conn.get(Keys().secret_fingerprint), what="the first process to record its secret")
    result = run("workers.imap", base_env(redis_url, tmp_path / "b", SERVICE_SECRET="another-secret"))
    assert_one_line_error(result, "SERVICE_SECRET")
    assert "another-secret" not in result.stderr


def test_generated_secret_is_kept(redis_url, tmp_path, spawn):
    env = base_env(redis_url, tmp_path)
    del env["SERVICE_SECRET"]
    for _ in range(2):  # the second start must find and accept the same secret
        proc = spawn("workers.webhooks", env)
        wait_for(lambda p=proc: "started" in p.output(), what="the worker to start")
        assert proc.stop() == 0
    secret_file = tmp_path / "var" / "service-secret"
    assert len(secret_file.read_text().strip()) == 64
    assert secret_file.stat().st_mode & 0o777 == 0o600
