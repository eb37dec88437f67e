"""The typed settings table: defaults, precedence, and one-line errors naming the setting."""

import pytest

from shared import config
from shared.errors import ConfigError


def load(tmp_path, env=None, dotenv=""):
    path = tmp_path / ".env"
    path.write_text(dotenv)
    return config.load(env or {}, dotenv_path=str(path))


def test_defaults(tmp_path):
    cfg = load(tmp_path)
    assert cfg.PORT == 3000 and cfg.HOST == "127.0.0.1"
    assert cfg.REDIS_URL == "redis://127.0.0.1:6479/0"
    assert cfg.PROMETHEUS_MULTIPROC_DIR.endswith("/var/metrics")
    assert cfg.PREPARED_TOKEN_SCOPES == ("*",)


def test_environment_wins_over_dotenv(tmp_path):
    cfg = load(tmp_path, {"PORT": "4000"}, "PORT=5000\nREDIS_PREFIX=a:\n")
    assert cfg.PORT == 4000 and cfg.REDIS_PREFIX == "a:"


@pytest.mark.parametrize("name, value, message", [
    ("PORT", "abc", "PORT: 'abc' is not a number"),
    ("PORT", "70000", "PORT: 70000 is outside 1..65535"),
    ("REDIS_URL", "http://localhost", "REDIS_URL: 'http://localhost' is not a redis://"),
    ("REDIS_URL", "redis://localhost:port/0", "REDIS_URL: 'redis://localhost:port/0' has an invalid port"),
    ("REDIS_URL", "redis://h/x", "REDIS_URL: 'redis://h/x': database 'x' is not a number"),
    ("PREPARED_TOKEN", "short", "PREPARED_TOKEN: must be 64 lower-case hex"),
    ("PREPARED_TOKEN_SCOPES", "metrics,root", "PREPARED_TOKEN_SCOPES: 'metrics,root': scopes are"),
    ("HEARTBEAT_INTERVAL", "0", "HEARTBEAT_INTERVAL: 0.0 must be greater than 0"),
    ("TRUSTED_PROXY", "10.0.0.0/8", "TRUSTED_PROXY: '10.0.0.0/8' is not an IP address"),
    ("TRUSTED_PROXY_HEADERS", "x-real-ip", "TRUSTED_PROXY_HEADERS: 'x-real-ip': a comma-separated list"),
    ("TRUSTED_PROXY_HEADERS", "forwarded,x-forwarded-for",
     "TRUSTED_PROXY_HEADERS: 'forwarded,x-forwarded-for': forwarded cannot be combined"),
])
def test_bad_values_name_the_setting(tmp_path, name, value, message):
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, {name: value})
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_redis_password_is_never_echoed(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, {"REDIS_URL": "redis://user:hunter2@host:bad/0"})
    assert "hunter2" not in str(caught.value) and "***" in str(caught.value)


def test_trusted_proxy(tmp_path):
    assert load(tmp_path).TRUSTED_PROXY == ""
    assert load(tmp_path).TRUSTED_PROXY_HEADERS == {"x-forwarded-for", "x-forwarded-proto"}
    cfg = load(tmp_path, {"TRUSTED_PROXY": " 0:0::1 ", "TRUSTED_PROXY_HEADERS": "Forwarded"})
    assert cfg.TRUSTED_PROXY == "::1" and cfg.TRUSTED_PROXY_HEADERS == {"forwarded"}
