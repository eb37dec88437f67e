"""IMAP worker process: `python -m workers.imap`. Holds accounts' IMAP connections."""

from gevent import monkey

monkey.patch_all()  # first statement: everything below sees cooperative sockets and threads

import argparse  # noqa: E402

from workers.runner import run  # noqa: E402


def main() -> None:
    argparse.ArgumentParser(prog="python -m workers.imap",
                            description="mailpulse IMAP worker (configured by environment)").parse_args()
    run("imap")


if __name__ == "__main__":
    main()
