"""One typed table of every setting, read from the environment and then from `.env`.

Every process reads its configuration here and nowhere else. A value that does not parse raises
ConfigError with a one-line message that names the setting; entry points print it and exit.
The environment wins over `.env` (the convention honcho follows too); `.env` is the app root's
(shared.runtime.home), and so are relative paths.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from .errors import ConfigError
from .runtime import home


def _int_in(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
        if not low <= value <= high:
            raise ValueError(f"{value} is outside {low}..{high}")
        return value

    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if value <= 0:
        raise ValueError(f"{value} must be greater than 0")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise ValueError(f"{value} must be greater than 0")
    return value


_SIZE_UNITS = {"": 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 1000**2, "mb": 1000**2, "mib": 1024**2}


def _size(text: str) -> int:
    """Bytes, as a number with an optional unit: 5242880, 5MiB, 256KiB, 5MB."""
    match = re.fullmatch(r"\s*(\d+)\s*([A-Za-z]*)\s*", text)
    unit = match and _SIZE_UNITS.get(match.group(2).lower())
    if not unit or int(match.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a size in bytes (e.g. 5242880, 5MiB, 256KiB)")
    return int(match.group(1)) * unit


def _idle_renew(text: str) -> float:
    value = _positive_float(text)
    if value >= 600:
        raise ValueError(f"{value:g} must be under 600 (IDLE is re-issued at least every 10 minutes)")
    return value


def _redis_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"{redact_url(text)!r} is not a redis://, rediss:// or unix:// URL")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ValueError(f"{redact_url(text)!r} has an invalid port") from None
    if parts.scheme != "unix" and not parts.hostname:
        raise ValueError(f"{redact_url(text)!r} has no host")
    db = parts.path.lstrip("/")
    if db and not db.isdigit():
        raise ValueError(f"{redact_url(text)!r}: database {db!r} is not a number")
    return text


def _sentinels(text: str) -> tuple[tuple[str, int], ...]:
    found = []
    for item in (i.strip() for i in text.split(",") if i.strip()):
        host, sep, port = item.rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(f"{item!r} is not host:port (a comma-separated list of Sentinels)")
        found.append((host, int(port)))
    return tuple(found)


def _master_name(text: str) -> str:
    if text and not re.fullmatch(r"[A-Za-z0-9_.:-]+", text):
        raise ValueError(f"{text!r} may only hold letters, digits and _ . : -")
    return text


def _prefix(text: str) -> str:
    if text and not re.fullmatch(r"[A-Za-z0-9_.:-]+", text):
        raise ValueError(f"{text!r} may only hold letters, digits and _ . : -")
    return text


def _token(text: str) -> str:
    if text and not re.fullmatch(r"[0-9a-f]{64}", text):
        raise ValueError("must be 64 lower-case hex characters (as `mailpulse tokens issue` prints)")
    return text


def _scopes(text: str) -> tuple[str, ...]:
    from .stores.tokens import SCOPES

    scopes = tuple(s.strip() for s in text.split(",") if s.strip())
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise ValueError(f"{text!r}: scopes are a comma-separated list of {', '.join(SCOPES)}")
    return scopes


def _allow_or_deny(text: str) -> str:
    value = text.strip().lower()
    if value not in ("allow", "deny"):
        raise ValueError(f"{text!r} is not allow or deny")
    return value


def _log_level(text: str) -> str:
    level = text.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError(f"{text!r} is not one of DEBUG, INFO, WARNING, ERROR")
    return level


def _proxy_address(text: str) -> str:
    if not text:
        return ""
    try:
        return str(ipaddress.ip_address(text.strip()))  # as waitress compares it: the peer's address
    except ValueError:
        raise ValueError(f"{text!r} is not an IP address (the reverse proxy's, e.g. 127.0.0.1)") from None


PROXY_HEADERS = ("x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port", "forwarded")


def _proxy_headers(text: str) -> frozenset[str]:
    headers = frozenset(h.strip().lower() for h in text.split(",") if h.strip())
    if not headers or headers - set(PROXY_HEADERS):
        raise ValueError(f"{text!r}: a comma-separated list of {', '.join(PROXY_HEADERS)}")
    if "forwarded" in headers and len(headers) > 1:
        raise ValueError(f"{text!r}: forwarded cannot be combined with x-forwarded-* headers")
    return headers


def redact_url(url: str) -> str:
    """The URL with any password replaced, safe for logs and error messages."""
    return re.sub(r"(//[^:/@]*:)[^@/]*@", r"\1***@", url)


@dataclass(frozen=True)
class Setting:
    name: str
    parse: Callable[[str], object]
    default: str
    help: str


SETTINGS = (
    Setting("HOST", str, "127.0.0.1", "address the web process binds"),
    Setting("PORT", _int_in(1, 65535), "3000", "port the web process binds (Procfile convention)"),
    Setting("TRUSTED_PROXY", _proxy_address, "",
            "IP address of a reverse proxy in front of the web process; only its proxy headers count"),
    Setting("TRUSTED_PROXY_HEADERS", _proxy_headers, "x-forwarded-for,x-forwarded-proto",
            "headers trusted from TRUSTED_PROXY: x-forwarded-for/-proto/-host/-port, or forwarded"),
    Setting("API_MAX_BODY", _size, "5MiB",
            "largest request body the web process accepts (admin forms: 256KiB); larger: 413, unread"),
    Setting("WEB_THREADS", _int_in(4, 1000), "32",
            "requests the web process serves at once (mailbox API calls wait for their IMAP process)"),
    Setting("API_TIMEOUT", _positive_float, "20",
            "seconds a mailbox API call waits for the IMAP process holding the account (then 504)"),
    Setting("REDIS_URL", _redis_url, "redis://127.0.0.1:6479/0",
            "Redis to use; the default is the embedded one the Procfile starts"),
    Setting("REDIS_SENTINELS", _sentinels, "",
            "Redis Sentinels (host:port, comma-separated) that name the master; REDIS_URL then gives "
            "only the password and db"),
    Setting("REDIS_SENTINEL_MASTER", _master_name, "", "the master's name as the Sentinels know it"),
    Setting("REDIS_PREFIX", _prefix, "", "prefix for every key, to share one Redis between installs"),
    Setting("REDIS_WAIT_SECONDS", _positive_float, "30",
            "how long a starting process waits for Redis to answer"),
    Setting(home.SETTING, str, "",
            "app root: .env is read there, relative paths resolve there (environment only; "
            "default: the working directory)"),
    Setting("VAR_DIR", str, "var",
            "directory for local state (secret, embedded Redis data), under the app root"),
    Setting("PROMETHEUS_MULTIPROC_DIR", str, "",
            "per-host directory of the processes' metric files (default VAR_DIR/metrics)"),
    Setting("SERVICE_SECRET", str, "",
            "key of webhook signatures and of encryption at rest; generated once when unset"),
    Setting("PREPARED_TOKEN", _token, "", "an access token installed at start (64 hex)"),
    Setting("PREPARED_TOKEN_SCOPES", _scopes, "*", "scopes of PREPARED_TOKEN, comma-separated"),
    Setting("HEARTBEAT_INTERVAL", _positive_float, "5", "seconds between worker heartbeats"),
    Setting("LOG_LEVEL", _log_level, "INFO", "DEBUG, INFO, WARNING or ERROR"),
    Setting("WEBHOOK_CONCURRENCY", _int_in(1, 1000), "200", "deliveries in flight per webhooks process"),
    Setting("WEBHOOK_TARGET_CONCURRENCY", _int_in(1, 1000), "50",
            "deliveries to one target (scheme, host, port) held at once per webhooks process; "
            "its further jobs wait aside so that other targets' go on"),
    Setting("WEBHOOK_TIMEOUT", _positive_float, "30", "seconds one webhook HTTP attempt may take in all"),
    Setting("WEBHOOK_ATTEMPTS", _int_in(1, 100), "10", "delivery attempts per event, the first one included"),
    Setting("WEBHOOK_BACKOFF", _positive_float, "5",
            "seconds before the first retry; doubles per attempt, with jitter"),
    Setting("WEBHOOK_LEASE", _positive_float, "30",
            "seconds after which a delivery held by a dead webhooks process is handed out again"),
    Setting("WEBHOOK_GRACE", _int_in(0, 25), "20",
            "seconds a stopping webhooks process lets deliveries in flight finish"),
    Setting("WEBHOOK_KEEP_FINISHED", _positive_int, "600",
            "seconds a delivered or skipped event's job stays visible (rq-dashboard)"),
    Setting("WEBHOOK_KEEP_FAILED", _positive_int, str(7 * 86400), "seconds a failed job is kept"),
    Setting("WEBHOOK_PRIVATE_TARGETS", _allow_or_deny, "allow",
            "allow or deny webhooks to loopback, private and other non-global addresses "
            "(deny where tenants choose URLs)"),
    Setting("WEBHOOK_KEEP_FAILED_MAX", _positive_int, "10000", "most failed jobs kept; the oldest go first"),
    Setting("SUBMIT_CONCURRENCY", _int_in(1, 1000), "20", "messages in flight per submit process"),
    Setting("SUBMIT_TIMEOUT", _positive_float, "60", "seconds one SMTP delivery attempt may take in all"),
    Setting("SUBMIT_ATTEMPTS", _int_in(1, 100), "10",
            "SMTP delivery attempts per message, the first included"),
    Setting("SUBMIT_BACKOFF", _positive_float, "5",
            "seconds before the first retry of a message; doubles per attempt, with jitter"),
    Setting("SUBMIT_LEASE", _positive_float, "90",
            "seconds after which a message held by a dead submit process is handed out again"),
    Setting("SUBMIT_MAX_SIZE", _size, "4MiB",
            "largest message (MIME, attachments decoded) that can be submitted"),
    Setting("IMAP_LEASE_SECONDS", _positive_float, "10",
            "seconds an IMAP process's hold on an account lasts unless renewed (takeover time)"),
    Setting("IMAP_POLL_INTERVAL", _positive_float, "60",
            "seconds between syncs of the folder list and of folders other than INBOX"),
    Setting("IMAP_IDLE_RENEW", _idle_renew, "300", "seconds after which IDLE on INBOX is re-issued"),
    Setting("IMAP_BACKOFF_MIN", _positive_float, "2",
            "seconds before the first reconnect; doubles, with jitter"),
    Setting("IMAP_BACKOFF_MAX", _positive_float, "600", "most seconds between reconnect attempts"),
    Setting("IMAP_LOGIN_RATE", _positive_float, "20",
            "IMAP logins per second per IMAP process at most (spreads reconnects: no login storms)"),
    Setting("IMAP_API_CONNECTIONS", _int_in(1, 20), "2",
            "command connections per account for mailbox API calls (never the IDLE one)"),
    Setting("IMAP_API_CONCURRENCY", _int_in(1, 10000), "100",
            "mailbox API requests one IMAP process serves at once"),
    Setting("IMAP_API_IDLE", _positive_float, "60",
            "seconds an unused command connection stays open"),
)


class Config(dict):
    """Parsed settings by name; attribute access for readability (`config.PORT`).

    `origin[name]` says where a value came from: "environment", the `.env` path, or "default";
    `dotenv_path` is the `.env` read, None when the app root has none.
    """

    origin: dict[str, str]
    dotenv_path: str | None

    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def load(env: dict[str, str] | None = None, dotenv_path: str | None = None) -> Config:
    """Parse every setting; the first bad one raises ConfigError naming it."""
    if env is None:
        env = dict(os.environ)
    root = home.resolve(env)
    dotenv_path = dotenv_path or os.path.join(root, home.DOTENV)
    file_values = home.read_dotenv(dotenv_path)
    config = Config()
    config.origin, config.dotenv_path = {}, dotenv_path if file_values is not None else None
    for setting in SETTINGS:
        raw, origin = env.get(setting.name), "environment"
        if raw is None and setting.name != home.SETTING:  # the app root is never read from its own .env
            raw, origin = (file_values or {}).get(setting.name), dotenv_path
        if raw is None:
            raw, origin = setting.default, "default"
        try:
            config[setting.name] = setting.parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{setting.name}: {exc}") from None
        config.origin[setting.name] = origin
    _check_sentinel_settings(config)
    if file_values is None and config.origin["REDIS_URL"] == "default":
        # Nothing configured here: most likely started from the wrong directory, where the
        # embedded default would be another Redis than the installation's.
        raise ConfigError(f"REDIS_URL: not set in the environment, and there is no .env in {root}; "
                          f"set REDIS_URL, or {home.SETTING} to the directory of mailpulse's .env")
    config[home.SETTING] = root
    config["VAR_DIR"] = home.resolve_path(root, config.VAR_DIR)
    config["PROMETHEUS_MULTIPROC_DIR"] = home.resolve_path(
        root, config.PROMETHEUS_MULTIPROC_DIR or os.path.join(config.VAR_DIR, "metrics"))
    return config


def _check_sentinel_settings(config: Config) -> None:
    if config.REDIS_SENTINELS and not config.REDIS_SENTINEL_MASTER:
        raise ConfigError("REDIS_SENTINEL_MASTER: must be set when REDIS_SENTINELS is (the master's name)")
    if config.REDIS_SENTINEL_MASTER and not config.REDIS_SENTINELS:
        raise ConfigError("REDIS_SENTINELS: must list the Sentinels (host:port) with REDIS_SENTINEL_MASTER")
    if config.REDIS_SENTINELS and config.REDIS_URL.startswith("unix:"):
        raise ConfigError("REDIS_URL: a unix:// URL cannot be combined with REDIS_SENTINELS")


def describe() -> str:
    """The settings table as text, for `--help` epilogs."""
    return "\n".join(f"  {s.name:<24} {s.help} (default: {s.default or 'unset'})" for s in SETTINGS)
