"""Webhook worker process: `python -m workers.webhooks`. Delivers events from rq's `notify`."""

from gevent import monkey

monkey.patch_all()  # first statement: deliveries run as greenlets

import argparse  # noqa: E402

from workers.runner import run  # noqa: E402


def main() -> None:
    argparse.ArgumentParser(prog="python -m workers.webhooks",
                            description="mailpulse webhook worker (configured by environment)").parse_args()
    run("webhooks")


if __name__ == "__main__":
    main()
