"""Submit worker process: `python -m workers.submit`. Sends the messages of rq's `submit` over SMTP."""

from gevent import monkey

monkey.patch_all()  # first statement: sends run as greenlets

import argparse  # noqa: E402

from workers.runner import run  # noqa: E402


def work(config, lifecycle, stop):
    from workers.submit.worker import work as send_until_stopped  # imports metrics: after bootstrap

    send_until_stopped(config, lifecycle, stop)


def main() -> None:
    argparse.ArgumentParser(prog="python -m workers.submit",
                            description="mailpulse submit worker: sends queued mail over SMTP "
                                        "(configured by environment: SUBMIT_* settings)").parse_args()
    run("submit", work)


if __name__ == "__main__":
    main()
