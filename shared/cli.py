"""The `mailpulse` command: the processes (`mailpulse web|imap|webhooks|embedded-redis`, each
exec'd in place), their supervisor configuration (`mailpulse export`), and administration from the
shell (access tokens, the admin password)."""

from __future__ import annotations

import argparse
import getpass
import hmac
import sys
import time

import redis

from . import __version__
from . import config as config_module
from .errors import ConfigError
from .keys import Keys
from .redis_conn import connect, wait_until_ready
from .redis_errors import kind_of, message_of
from .runtime import export, processes
from .stores.admin_password import AdminPassword, AdminPasswordError, validate
from .stores.tokens import SCOPES, TokenError, TokenStore


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "never"


def tokens_issue(store: TokenStore, args) -> None:
    token = store.issue(args.scope or ["*"], args.description)
    print(f"Access token ({', '.join(args.scope or ['*'])}); it is shown only this once:",
          file=sys.stderr)
    print(token)


def tokens_list(store: TokenStore, args) -> None:
    rows = [("ID", "DESCRIPTION", "SCOPES", "CREATED", "LAST USED", "FROM")]
    for t in store.list():
        rows.append((t.id, t.description or "-", ",".join(t.scopes), _when(t.created),
                     _when(t.last_used), t.last_ip or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)).rstrip())


def tokens_revoke(store: TokenStore, args) -> None:
    token = store.revoke(args.id)
    print(f"revoked {token.id} ({token.description or 'no description'})")


def read_new_password(args) -> str:
    """The new admin password from stdin (`--password-stdin`) or typed twice at a prompt."""
    if args.password_stdin:
        return validate(sys.stdin.readline().rstrip("\r\n"))
    if not sys.stdin.isatty():
        raise AdminPasswordError("no terminal to prompt on; pipe the password with --password-stdin")
    password = validate(getpass.getpass("New admin password: "))
    if not hmac.compare_digest(password.encode(), getpass.getpass("Repeat it: ").encode()):
        raise AdminPasswordError("the two passwords differ; nothing was changed")
    return password


def admin_password(conn, keys: Keys, args) -> None:
    AdminPassword(conn, keys).set(args.new_password)
    print("admin password set; sessions made with the previous password are signed out", file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mailpulse",
        description="mailpulse: its processes, their supervisor configuration, administration",
        epilog="settings (environment or .env):\n" + config_module.describe(),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"mailpulse {__version__}")
    groups = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")
    for process in processes.PROCESS_TYPES:  # dispatched in main() before parsing; listed for --help
        groups.add_parser(process.command, help=f"run {process.help} (Procfile type {process.name})")
    export.add_parser(groups)
    tokens = groups.add_parser("tokens", help="manage access tokens", description="manage access tokens")
    actions = tokens.add_subparsers(dest="action", required=True, metavar="ACTION")
    issue = actions.add_parser("issue", help="create a token and print it (last line of stdout)",
                               description="create a token and print it alone on the last line")
    issue.add_argument("--scope", action="append", choices=SCOPES,
                       help="scope of the token, repeatable; * (all scopes) when none is given")
    issue.add_argument("--description", default="", help="what the token is for")
    issue.set_defaults(run=tokens_issue)
    listing = actions.add_parser("list", help="list tokens", description="list tokens")
    listing.set_defaults(run=tokens_list)
    revoke = actions.add_parser("revoke", help="revoke a token by id", description="revoke a token by id")
    revoke.add_argument("id", help="token id as `tokens list` shows it")
    revoke.set_defaults(run=tokens_revoke)

    admin = groups.add_parser("admin", help="the admin pages under /admin",
                              description="the admin pages under /admin")
    admin_actions = admin.add_subparsers(dest="action", required=True, metavar="ACTION")
    password = admin_actions.add_parser(
        "password", help="set the admin password (prompts twice, or reads one line of stdin)",
        description="set the password of the admin pages; it is stored hashed (scrypt)")
    password.add_argument("--password-stdin", action="store_true",
                          help="read the password from the first line of standard input")
    password.set_defaults(run=admin_password, needs_password=True)
    return parser


def using_default_redis(config) -> None:
    """Say so when the CLI talks to the embedded default: from another directory than the
    installation's (see MAILPULSE_HOME), that would be another Redis than the processes use."""
    if config.origin["REDIS_URL"] == "default":
        print(f"mailpulse: using the embedded default Redis {config.REDIS_URL} (REDIS_URL is set neither "
              f"in the environment nor in {config.dotenv_path})", file=sys.stderr)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in processes.BY_COMMAND:  # become the process: its own --help and arguments
        processes.exec_process(processes.BY_COMMAND[argv[0]], argv[1:])
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "needs_password", False):
            args.new_password = read_new_password(args)  # before Redis: a typo costs no wait
        if not getattr(args, "needs_redis", True):
            args.run(args)
            return 0
        config = config_module.load()
        using_default_redis(config)
        conn = connect(config)
        wait_until_ready(conn, config)
        keys = Keys(config.REDIS_PREFIX)
        if args.group == "tokens":
            args.run(TokenStore(conn, keys), args)
        else:
            args.run(conn, keys, args)
    except ConfigError as exc:
        print(f"mailpulse: configuration error: {exc}", file=sys.stderr)
        return exc.exit_code
    except (TokenError, AdminPasswordError) as exc:
        print(f"mailpulse: {exc}", file=sys.stderr)
        return 1
    except redis.RedisError as exc:
        print(f"mailpulse: Redis refused ({kind_of(exc)}): {message_of(exc)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
