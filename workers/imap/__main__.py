"""IMAP worker process: `python -m workers.imap`. Holds accounts' IMAP connections."""

from gevent import monkey

monkey.patch_all()  # first statement: everything below sees cooperative sockets and threads

import argparse  # noqa: E402

from shared.config import describe  # noqa: E402
from workers.runner import run  # noqa: E402


def preload():
    import workers.imap.worker  # noqa: F401 - imports metrics: after bootstrap, before the greenlets


def work(config, lifecycle, stop):
    from workers.imap.worker import work as hold_accounts_until_stopped

    hold_accounts_until_stopped(config, lifecycle, stop)


def main() -> None:
    argparse.ArgumentParser(prog="python -m workers.imap",
                            formatter_class=argparse.RawDescriptionHelpFormatter,
                            description="mailpulse IMAP worker (configured by environment)",
                            epilog="settings:\n" + describe()).parse_args()
    run("imap", work, preload)


if __name__ == "__main__":
    main()
