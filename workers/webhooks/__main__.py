"""Webhook worker process: `python -m workers.webhooks`. Delivers events from rq's `notify`."""

from gevent import monkey

monkey.patch_all()  # first statement: deliveries run as greenlets

import argparse  # noqa: E402

from workers.runner import run  # noqa: E402


def work(config, lifecycle, stop):
    import gevent

    # c-ares resolves in the hub, not on gevent's small shared thread pool: a tenant's slow DNS
    # holds up only its own attempt (whose deadline covers resolution, client.py).
    gevent.config.resolver = "ares"
    from workers.webhooks.worker import work as deliver_until_stopped  # imports metrics: after bootstrap

    deliver_until_stopped(config, lifecycle, stop)


def main() -> None:
    argparse.ArgumentParser(prog="python -m workers.webhooks",
                            description="mailpulse webhook worker (configured by environment)").parse_args()
    run("webhooks", work)


if __name__ == "__main__":
    main()
