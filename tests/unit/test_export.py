"""The process table, the Procfile, and what `mailpulse export` writes for supervisord and systemd."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from shared import config
from shared.runtime import processes

ROOT = Path(__file__).resolve().parents[2]
MAILPULSE = Path(sys.executable).parent / "mailpulse"
# Without the test run's own settings (PROMETHEUS_MULTIPROC_DIR): export would note they stay behind.
ENV = {k: v for k, v in os.environ.items() if k not in {s.name for s in config.SETTINGS}}


def export(tmp_path, *args, grace="20"):
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / ".env").write_text(f"REDIS_URL=redis://127.0.0.1:6479/0\nWEBHOOK_GRACE={grace}\n")
    return subprocess.run([str(MAILPULSE), "export", *args, "--home", str(home)], cwd=tmp_path, env=ENV,
                          capture_output=True, text=True, timeout=60)


def one_line_error(result, name: str) -> str:
    assert result.returncode != 0 and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"mailpulse: configuration error: {name}: "), line
    return line


def test_the_procfile_is_the_process_table():
    assert (ROOT / "Procfile").read_text() == processes.procfile()
    assert "web: mailpulse web\n" in processes.procfile() and ".venv" not in processes.procfile()


def test_export_procfile_writes_the_same(tmp_path):
    result = export(tmp_path, "procfile", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "Procfile").read_text() == processes.procfile()


def test_supervisord_programs_stop_gracefully_and_restart(tmp_path):
    result = export(tmp_path, "supervisord", str(tmp_path / "conf.d"), "-l", str(tmp_path / "log"),
                    "-c", "imap=2,webhooks=3", grace="25")
    assert result.returncode == 0, result.stderr
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(tmp_path / "conf.d" / "mailpulse.conf")
    programs = {s.removeprefix("program:"): parser[s] for s in parser.sections() if s.startswith("program:")}
    assert sorted(programs) == ["mailpulse-imap-1", "mailpulse-imap-2", "mailpulse-submit-1",
                                "mailpulse-web-1", "mailpulse-webhooks-1", "mailpulse-webhooks-2",
                                "mailpulse-webhooks-3"]
    assert parser["group:mailpulse"]["programs"].split(",") == list(programs)
    for name, program in programs.items():
        kind = name.split("-")[1]
        # The worker itself, by absolute path (supervisord's PATH need not hold the virtualenv).
        assert program["command"] == f"{MAILPULSE} {processes.BY_NAME[kind].command}"
        assert program["stopsignal"] == "TERM"  # what every mailpulse process handles gracefully
        assert program["stopasgroup"] == program["killasgroup"] == program["autorestart"] == "true"
        assert program["environment"] == f"MAILPULSE_HOME={tmp_path / 'home'}"  # no .env values copied
        assert program["directory"] == str(tmp_path / "home")
        assert program["stdout_logfile"] == f"{tmp_path / 'log'}/{name.removeprefix('mailpulse-')}.log"
        assert program["redirect_stderr"] == "true"
    assert int(programs["mailpulse-webhooks-1"]["stopwaitsecs"]) > 25  # longer than WEBHOOK_GRACE
    assert int(programs["mailpulse-imap-1"]["stopwaitsecs"]) > 30  # the IMAP sessions' stop
    assert int(programs["mailpulse-submit-1"]["stopwaitsecs"]) > 20  # the sends' grace (workers/submit)
    assert (tmp_path / "log").is_dir()


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_units_verify(tmp_path):
    units = tmp_path / "units"
    result = export(tmp_path, "systemd", str(units), "-c", "redis=1")
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in units.iterdir())
    assert "mailpulse.target" in names and "mailpulse-redis-1.service" in names
    verify = subprocess.run(["systemd-analyze", "verify", *(str(units / n) for n in names)],
                            capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0 and verify.stderr == "", verify.stderr
    service = configparser.ConfigParser(interpolation=None, strict=False)
    service.read(units / "mailpulse-webhooks-1.service")
    unit = service["Service"]
    assert unit["ExecStart"] == f"{MAILPULSE} webhooks" and unit["KillSignal"] == "SIGTERM"
    assert unit["KillMode"] == "mixed" and unit["Restart"] == "always"
    assert int(unit["TimeoutStopSec"]) > 20 and unit["Environment"] == f'"MAILPULSE_HOME={tmp_path / "home"}"'


@pytest.mark.parametrize("args, name, says", [
    (["-c", "web=2"], "--concurrency", "web=2: at most 1 per host"),
    (["-c", "smtp=1"], "--concurrency", "unknown process type 'smtp'"),
    (["-c", "imap=two"], "--concurrency", "is not TYPE=N"),
    (["-c", "web=0,imap=0,webhooks=0,submit=0"], "--concurrency", "no process left"),
    (["--stop-wait", "10"], "--stop-wait", "shorter than a web process may take"),
    (["--user", "no-such-user-here"], "--user", "no such user"),
    (["-l", "relative/log"], "--log", "is not an absolute path"),
    (["-a", "my app"], "--app", "may only hold"),
])
def test_options_mailpulse_cannot_honour(tmp_path, args, name, says):
    line = one_line_error(export(tmp_path, "supervisord", str(tmp_path / "out"), *args), name)
    assert says in line
    assert not (tmp_path / "out").exists()


def test_stop_wait_must_cover_the_webhooks_grace(tmp_path):
    line = one_line_error(export(tmp_path, "systemd", str(tmp_path / "out"), "--stop-wait", "44",
                                 "-c", "imap=0", grace="25"), "--stop-wait")
    assert "webhooks" in line and "45 s" in line


def test_export_refuses_an_app_root_without_settings(tmp_path):
    (tmp_path / "empty").mkdir()
    result = subprocess.run([str(MAILPULSE), "export", "systemd", str(tmp_path / "out"), "--home",
                             str(tmp_path / "empty")], env=ENV, capture_output=True, text=True, timeout=60)
    one_line_error(result, "REDIS_URL")
