"""`mailpulse export supervisord|systemd|procfile LOCATION`: run mailpulse under a real supervisor.

honcho's own `honcho export` is not right for mailpulse: it wraps every command in `/bin/sh -c`
(Debian's sh does not exec it, so signals stop the shell and orphan the worker), stops with QUIT
(which mailpulse does not handle), waits honcho's 10 s default, and copies `.env`, secrets
included, into the generated files. This command uses honcho's exporters (file layout, names,
groups) with mailpulse's templates (package data, so a plain `pip install` has them): the
command is the mailpulse process itself (absolute path, exec'd), the stop signal is TERM, the
stop wait is longer than each process's grace, a crashed process is restarted alone, logs go to
files that supervisord rotates (or the journal). The generated files carry only MAILPULSE_HOME:
the processes read everything else from that directory's `.env` at every start.
"""

from __future__ import annotations

import argparse
import os
import pwd
import re
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .. import config as config_module
from ..errors import ConfigError
from . import home, processes

FORMATS = ("supervisord", "systemd", "procfile")
TEMPLATES = Path(__file__).with_name("export_templates")


@dataclass(frozen=True)
class ExportedProcess:
    """One process as honcho's exporters read it (honcho.environ.ProcessParams), plus its stop wait."""

    name: str  # "imap.1"
    cmd: str
    stop_wait: int
    env: dict = field(default_factory=dict)
    quiet: bool = False


def add_parser(groups) -> None:
    parser = groups.add_parser(
        "export", help="write supervisord or systemd configuration (or the Procfile)",
        description=__doc__.split("\n\n")[0].split(": ", 1)[1], epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("format", choices=FORMATS, help="what to write")
    parser.add_argument("location",
                        help="directory to write to (e.g. /etc/supervisor/conf.d, /etc/systemd/system)")
    parser.add_argument("-a", "--app", default="mailpulse",
                        help="name of the group or target, prefix of every program or unit")
    defaults = ",".join(f"{p.name}={p.exported}" for p in processes.PROCESS_TYPES)
    parser.add_argument("-c", "--concurrency", default="", metavar="TYPE=N,...",
                        help="processes per type, e.g. imap=2,webhooks=3; redis=1 adds the embedded Redis "
                             f"(default: {defaults})")
    parser.add_argument("-u", "--user", help="user the processes run as (default: the supervisor's)")
    parser.add_argument("-l", "--log", metavar="DIR", help="supervisord: directory of the log files, created "
                        "when missing (default: /var/log/APP); systemd logs to the journal")
    parser.add_argument("--home", metavar="DIR", help="the app root (MAILPULSE_HOME) the processes use: "
                        "its .env and var/ (default: MAILPULSE_HOME, else the working directory)")
    parser.add_argument("--stop-wait", type=int, metavar="SECONDS",
                        help="seconds a stopping process is given before SIGKILL (default: what each needs)")
    parser.set_defaults(run=run, needs_redis=False)


def run(args) -> None:
    """Raises ConfigError (naming the option or setting) for what cannot be honoured."""
    if args.format == "procfile":
        _write(Path(args.location), "Procfile", processes.procfile())
        return
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", args.app):
        raise ConfigError(f"--app: {args.app!r} may only hold letters, digits, _ and - (it names units)")
    root = home.resolve({home.SETTING: args.home or os.environ.get(home.SETTING, "")})
    # Exactly what the exported processes will see: MAILPULSE_HOME and that directory's .env.
    config = config_module.load({home.SETTING: root})
    _warn_about_shell_settings(config)
    counts = parse_concurrency(args.concurrency)
    exported = exported_processes(config, counts, args.stop_wait, {home.SETTING: root})
    context = {"app": args.app, "app_root": root, "user": _user(args.user), "log": _log_dir(args)}
    exporter = _exporter(args.format)
    for file in exporter.render(exported, context):
        _write(Path(args.location), file.name, file.content)
    print(_next_steps(args.format, args.app, args.location, context["log"]), file=sys.stderr)


def parse_concurrency(text: str) -> dict[str, int]:
    counts = {p.name: p.exported for p in processes.PROCESS_TYPES}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, number = item.partition("=")
        process = processes.BY_NAME.get(name.strip())
        if process is None:
            raise ConfigError(f"--concurrency: unknown process type {name.strip()!r} "
                              f"(one of {', '.join(processes.BY_NAME)})")
        if not number.strip().isdigit():
            raise ConfigError(f"--concurrency: {item!r} is not TYPE=N with N a whole number")
        count = int(number)
        if process.most is not None and count > process.most:
            raise ConfigError(f"--concurrency: {process.name}={count}: at most {process.most} per host")
        counts[process.name] = count
    if not any(counts.values()):
        raise ConfigError("--concurrency: no process left to export")
    return counts


def exported_processes(config, counts: dict[str, int], stop_wait: int | None,
                       env: dict) -> list[ExportedProcess]:
    command = mailpulse_command()
    result = []
    for process in processes.PROCESS_TYPES:
        needed = int(process.stop_seconds(config))
        if stop_wait is not None and counts[process.name] and stop_wait < needed:
            raise ConfigError(f"--stop-wait: {stop_wait} s is shorter than a {process.name} process "
                              f"may take to stop gracefully ({needed} s with these settings)")
        for i in range(counts[process.name]):
            result.append(ExportedProcess(f"{process.name}.{i + 1}", f"{command} {process.command}",
                                          stop_wait or needed, dict(env)))
    return result


def mailpulse_command() -> str:
    """This installation's `mailpulse`, absolute: a supervisor's PATH need not contain it."""
    beside = Path(sys.executable).parent / "mailpulse"
    if os.access(beside, os.X_OK):
        return shlex.quote(str(beside))
    found = shutil.which("mailpulse")
    if found:
        return shlex.quote(os.path.abspath(found))
    return f"{shlex.quote(sys.executable)} -m shared.cli"


def _user(name: str | None) -> str | None:
    if name is not None:
        try:
            pwd.getpwnam(name)
        except KeyError:
            raise ConfigError(f"--user: no such user {name!r}") from None
    return name


def _log_dir(args) -> str | None:
    if args.format != "supervisord":
        return None
    log = args.log or f"/var/log/{args.app}"
    if not os.path.isabs(log):
        raise ConfigError(f"--log: {log!r} is not an absolute path")
    try:
        os.makedirs(log, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--log: cannot create {log} ({exc.strerror})") from None
    return log


def _exporter(fmt: str):
    import jinja2  # Flask's dependency; honcho's exporters need it
    from honcho.export.base import dashrepl, percentescape

    if fmt == "supervisord":
        from honcho.export.supervisord import Export
    else:
        from honcho.export.systemd import Export
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES / fmt)),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters.update(shellquote=shlex.quote, dashrepl=dashrepl, percentescape=percentescape,
                       systemd_quote=_systemd_quote, systemd_exec=_systemd_exec)
    return Export(template_env=env)


def _systemd_quote(value: str) -> str:
    """One Environment= assignment, double-quoted; % doubled (systemd specifiers)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return f'"{escaped}"'


def _systemd_exec(command: str) -> str:
    """ExecStart=: % and $ are systemd's own (specifiers, variables) unless doubled."""
    return command.replace("%", "%%").replace("$", "$$")


def _write(location: Path, name: str, content: str) -> None:
    try:
        location.mkdir(parents=True, exist_ok=True)
        (location / name).write_text(content)
    except OSError as exc:
        raise ConfigError(f"LOCATION: cannot write {location / name} ({exc.strerror})") from None
    print(f"wrote {location / name}", file=sys.stderr)


def _warn_about_shell_settings(config) -> None:
    """Settings in this shell's environment do not reach the exported processes: say so."""
    names = [s.name for s in config_module.SETTINGS if s.name in os.environ and s.name != home.SETTING
             and config.origin[s.name] == "default"]
    if names:
        where = config.dotenv_path or "a .env"
        print(f"mailpulse: note: {', '.join(names)} set in this shell but not in {where}: "
              "the exported processes read only MAILPULSE_HOME's .env", file=sys.stderr)


def _next_steps(fmt: str, app: str, location: str, log: str | None) -> str:
    if fmt == "supervisord":
        return (f"next: include {location}/{app}.conf from supervisord.conf ([include] files=...; Debian's "
                f"reads /etc/supervisor/conf.d/), then `supervisorctl update`; logs in {log}/")
    return (f"next: `systemctl daemon-reload && systemctl enable --now {app}.target` "
            f"(units in {location}); logs: `journalctl -u '{app}-*'`")
