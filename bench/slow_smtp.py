"""An SMTP receiver for bench/submit.py that answers DATA after a fixed delay, as a remote
submission server does (network round trip, queue write, content scanning), and discards what
it is given. Runs in its own process so that the benchmark's loops do not share its GIL.

    .venv/bin/python bench/slow_smtp.py PORT DELAY_MS
"""

from __future__ import annotations

import asyncio
import signal
import sys

from aiosmtpd.controller import Controller


class DelayedData:
    def __init__(self, delay: float):
        self.delay = delay

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(self.delay)
        return "250 2.0.0 OK queued"


def main() -> None:
    port, delay_ms = int(sys.argv[1]), float(sys.argv[2])
    controller = Controller(DelayedData(delay_ms / 1000), hostname="127.0.0.1", port=port,
                            ready_timeout=10)
    controller.start()
    print("ready", flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    controller.stop()


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})  # for sigwait, in every thread
    main()
