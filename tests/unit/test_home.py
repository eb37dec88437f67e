"""The app root (MAILPULSE_HOME): where .env is read and relative paths resolve, from any directory."""

import os

import pytest

from shared import config
from shared.errors import ConfigError


def error_of(env) -> str:
    with pytest.raises(ConfigError) as caught:
        config.load(env)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_dotenv_and_relative_paths_come_from_the_app_root(tmp_path, monkeypatch):
    home = tmp_path / "srv"
    home.mkdir()
    (home / ".env").write_text("REDIS_URL=redis://redis.internal:6379/2\nREDIS_PREFIX=a:\nVAR_DIR=state\n"
                               "MAILPULSE_HOME=/ignored\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = config.load({"MAILPULSE_HOME": str(home), "REDIS_PREFIX": "b:"})
    assert cfg.MAILPULSE_HOME == str(home)
    assert cfg.REDIS_URL == "redis://redis.internal:6379/2" and cfg.REDIS_PREFIX == "b:"  # environment wins
    assert cfg.VAR_DIR == str(home / "state")
    assert cfg.PROMETHEUS_MULTIPROC_DIR == str(home / "state" / "metrics")
    assert cfg.origin["REDIS_URL"] == str(home / ".env") and cfg.origin["REDIS_PREFIX"] == "environment"
    assert cfg.dotenv_path == str(home / ".env")


def test_without_mailpulse_home_the_working_directory_is_the_app_root(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("PORT=3100\n")
    monkeypatch.chdir(tmp_path)
    cfg = config.load({})
    assert cfg.PORT == 3100 and cfg.VAR_DIR == str(tmp_path / "var")
    assert cfg.origin["REDIS_URL"] == "default"  # a .env that names no Redis: the embedded default


def test_absolute_paths_stay_as_given(tmp_path):
    cfg = config.load({"MAILPULSE_HOME": str(tmp_path), "REDIS_URL": "redis://h/0", "VAR_DIR": "/srv/state",
                       "PROMETHEUS_MULTIPROC_DIR": "/run/mailpulse-metrics"})
    assert cfg.VAR_DIR == "/srv/state" and cfg.PROMETHEUS_MULTIPROC_DIR == "/run/mailpulse-metrics"


def test_a_missing_app_root_is_named(tmp_path):
    message = error_of({"MAILPULSE_HOME": str(tmp_path / "nope")})
    assert message == f"MAILPULSE_HOME: {tmp_path / 'nope'} is not a directory"


def test_an_unreadable_dotenv_is_named(tmp_path):
    (tmp_path / ".env").mkdir()  # unreadable as a file, even for root
    message = error_of({"MAILPULSE_HOME": str(tmp_path)})
    assert message.startswith(f"MAILPULSE_HOME: {tmp_path / '.env'} cannot be read")


def test_the_root_directory_is_not_an_app_root(monkeypatch):
    monkeypatch.chdir("/")
    message = error_of({"REDIS_URL": "redis://h/0"})
    assert message.startswith("MAILPULSE_HOME: unset, and the working directory is /")


def test_no_settings_at_all_is_refused_rather_than_the_embedded_default(tmp_path, monkeypatch):
    """Started where there is no .env and no REDIS_URL: the default Redis would be another one."""
    monkeypatch.chdir(tmp_path)
    message = error_of({})
    assert message.startswith(f"REDIS_URL: not set in the environment, and there is no .env in {tmp_path}")
    assert config.load({"REDIS_URL": "redis://127.0.0.1:6479/0"}).origin["REDIS_URL"] == "environment"


@pytest.mark.parametrize("name", ["WEBHOOK_KEEP_FINISHED", "WEBHOOK_KEEP_FAILED", "WEBHOOK_KEEP_FAILED_MAX"])
@pytest.mark.parametrize("value", ["0", "-5", "abc", "1.5"])
def test_keep_settings_are_positive_whole_numbers(tmp_path, name, value):
    env = {"MAILPULSE_HOME": str(tmp_path), "REDIS_URL": "redis://h/0", name: value}
    assert error_of(env).startswith(f"{name}: ")


def test_keep_defaults(tmp_path):
    cfg = config.load({"MAILPULSE_HOME": str(tmp_path), "REDIS_URL": "redis://h/0"})
    keep = (cfg.WEBHOOK_KEEP_FINISHED, cfg.WEBHOOK_KEEP_FAILED, cfg.WEBHOOK_KEEP_FAILED_MAX)
    assert keep == (600, 7 * 86400, 10000)


@pytest.mark.parametrize("text, size", [("5MiB", 5 * 1024 * 1024), ("256KiB", 262144), ("1000", 1000),
                                        ("2 MB", 2_000_000)])
def test_api_max_body_sizes(tmp_path, text, size):
    env = {"MAILPULSE_HOME": str(tmp_path), "REDIS_URL": "redis://h/0", "API_MAX_BODY": text}
    assert config.load(env).API_MAX_BODY == size


@pytest.mark.parametrize("text", ["0", "5GiB!", "lots", "-1"])
def test_bad_api_max_body(tmp_path, text):
    env = {"MAILPULSE_HOME": str(tmp_path), "REDIS_URL": "redis://h/0", "API_MAX_BODY": text}
    assert error_of(env).startswith("API_MAX_BODY: ")


def test_every_setting_is_in_the_readme_table():
    readme = open(os.path.join(os.path.dirname(__file__), "..", "..", "README.md")).read()
    missing = [s.name for s in config.SETTINGS if f"`{s.name}`" not in readme]
    assert missing == []
