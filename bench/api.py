"""Benchmark: the mailbox API next to a direct imapclient fetch of the same data, in one run.

    .venv/bin/python bench/api.py [--samples 200] [--attachment-mib 20]

Starts its own redis-server, Dovecot, a loopback webhook receiver, one webhooks, one IMAP and
one web process. Account `bench` has 40 messages, one of them multipart with an attachment of
--attachment-mib MiB; account `watch` only receives new mail. Prints, each next to its baseline
measured in the same run:

- GET message (headers, structure, no text) p50/p99, against a direct imapclient UID FETCH of
  FLAGS INTERNALDATE RFC822.SIZE BODYSTRUCTURE BODY.PEEK[HEADER] on a logged-in, selected
  connection (the work the IMAP process does for it);
- the floor under it, measured the same way: a Redis PING, a request through the mailbox
  channel that the IMAP process answers without IMAP (an unknown operation), an HTTP request
  the web process answers without Redis (an unknown path), and one that checks the token and
  looks the account up (an unknown account);
- GET messages (20 per page) p50/p99, against a direct FETCH of the same 20 envelopes;
- attachment download MB/s, against a direct FETCH of the whole encoded part (decoded here);
- APPEND -> messageNew latency of `watch` (held by the same IMAP process) quiet, and while 20
  threads read `bench` through the API without pause.

Latencies are measured with one keep-alive http.client connection: requests costs ~1 ms more
per call in the client itself, which is not the API's. Goals (issue 14): GET message p50 within
3x of the direct fetch; new-mail latency under the API load within 10% of the quiet one. Not a
test: it prints figures and checks nothing.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="mailpulse-bench-metrics-")

import redis  # noqa: E402
import requests  # noqa: E402
from imap_big import percentile  # noqa: E402  (beside this file)

from shared.keys import Keys  # noqa: E402
from shared.mail import mailbox_channel as channel  # noqa: E402
from shared.mail.message_ids import message_id  # noqa: E402
from shared.stores.accounts import AccountStore  # noqa: E402
from shared.stores.settings import SettingsStore  # noqa: E402
from shared.stores.tokens import TokenStore  # noqa: E402
from support import mail  # noqa: E402
from support.dovecot import Dovecot  # noqa: E402
from support.receiver import Receiver  # noqa: E402
from support.servers import RedisServer, free_port, wait_for  # noqa: E402

SECRET = "bench-secret-" + "0" * 20
KEYS = Keys("")
MESSAGE_ITEMS = ["UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "BODYSTRUCTURE", "BODY.PEEK[HEADER]"]
LIST_ITEMS = ["UID", "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"]


def timed(work, n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        work()
        out.append(time.perf_counter() - started)
    return out


def ms(values: list[float], digits: int = 1) -> str:
    return (f"p50 {percentile(values, 50) * 1000:.{digits}f} ms, "
            f"p99 {percentile(values, 99) * 1000:.{digits}f} ms")


class Http:
    """One keep-alive connection to the web process, with the token."""

    def __init__(self, port: int, token: str):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Authorization": "Bearer " + token}

    def get(self, path: str, expect: int = 200) -> bytes:
        self.conn.request("GET", path, headers=self.headers)
        response = self.conn.getresponse()
        body = response.read()
        if response.status != expect:
            raise AssertionError(f"GET {path}: {response.status} {body[:200]!r}")
        return body


def channel_round_trip(conn: redis.Redis, account: str, op: str = "none", params: dict | None = None):
    """One request straight onto the holder's list, as the web pushes it, and its answer: an
    unknown operation is answered without IMAP."""
    holder = conn.get(KEYS.account_lease(account)).decode()
    request_id = os.urandom(8).hex()
    deadline = int((time.time() + 10) * 1000)
    conn.rpush(KEYS.imap_requests(holder), channel.request(request_id, account, op, params or {}, deadline))
    popped = conn.blpop([KEYS.api_reply(request_id)], timeout=10)
    kind, value = channel.decode(popped[1])
    assert (kind, value[0]) == (channel.ANSWER, 200) if params else value["status"] == 400


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=200, help="requests per latency figure")
    parser.add_argument("--attachment-mib", type=int, default=20, help="size of the attachment downloaded")
    parser.add_argument("--mail", type=int, default=10, help="new messages per new-mail latency figure")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mailpulse-bench-") as tmp, Receiver() as receiver:
        redis_server = RedisServer(Path(tmp))
        redis_server.start()
        dovecot = Dovecot()
        dovecot.start()
        conn = redis.Redis.from_url(redis_server.url)
        port = free_port()
        env = dict(os.environ, REDIS_URL=redis_server.url, VAR_DIR=os.path.join(tmp, "var"),
                   SERVICE_SECRET=SECRET, PROMETHEUS_MULTIPROC_DIR=os.path.join(tmp, "metrics"),
                   LOG_LEVEL="WARNING", PORT=str(port))
        procs = []
        try:
            SettingsStore(conn, KEYS).update({"webhooks": receiver.url + "/hook", "webhooksEnabled": True,
                                              "webhookEvents": ["messageNew"]})
            content = os.urandom(args.attachment_mib * 1024 * 1024)
            for user in ("bench", "watch"):
                dovecot.add_user(user, "pw")
            with dovecot.client("bench") as client:
                for n in range(39):
                    dovecot.append_with(client, f"filler {n}", "b@example.com", "bench@example.com")
                raw = mail.multipart(subject="Bench", attachment=content, filename="big.bin")
                uid = mail.append(client, raw)
                uidvalidity = client.select_folder("INBOX")[b"UIDVALIDITY"]
            store = AccountStore(conn, KEYS, SECRET)
            for user in ("bench", "watch"):
                store.create({"account": user, "name": user, "imap": dovecot.settings(user)})
            for module in ("workers.webhooks", "workers.imap", "web"):
                procs.append(subprocess.Popen([sys.executable, "-m", module], cwd=ROOT, env=env))
            url = f"http://127.0.0.1:{port}"
            wait_for(lambda: all((conn.hget(KEYS.account(u), "state") or b"") == b"connected"
                                 for u in ("bench", "watch")), timeout=60, what="both accounts connected")
            session = requests.Session()
            token = TokenStore(conn, KEYS).issue(("api",))
            session.headers["Authorization"] = "Bearer " + token

            def web_up():
                try:
                    return session.get(url + "/health", timeout=5).ok
                except requests.ConnectionError:
                    return False  # not listening yet

            wait_for(web_up, timeout=30, what="web")
            message_path = f"/v1/account/bench/message/{message_id('INBOX', uidvalidity, uid)}"
            target = url + message_path
            message = session.get(target, timeout=30).json()
            client = Http(port, token)
            attachment = next(a for a in message["attachments"] if a["filename"] == "big.bin")
            section = attachment_section = None
            with dovecot.client("bench") as direct:
                direct.select_folder("INBOX", readonly=True)
                structure = direct.fetch([uid], ["BODYSTRUCTURE"])[uid][b"BODYSTRUCTURE"]
                section = str(len(structure[0]))  # the attachment is the last part
                attachment_section = f"BODY.PEEK[{section}]"
                exists = direct.folder_status("INBOX", ["MESSAGES"])[b"MESSAGES"]

                message_params = {"id": message["id"], "path": "INBOX", "uidvalidity": uidvalidity,
                                  "uid": uid, "textType": None}
                direct_message = timed(lambda: direct.fetch([uid], MESSAGE_ITEMS), args.samples)
                api_message = timed(lambda: client.get(message_path), args.samples)
                floor = {
                    "Redis PING": timed(conn.ping, args.samples),
                    "mailbox channel, answered without IMAP": timed(
                        lambda: channel_round_trip(conn, "bench"), args.samples),
                    "mailbox channel, the message op (all of GET message but HTTP)": timed(
                        lambda: channel_round_trip(conn, "bench", "message", message_params), args.samples),
                    "HTTP, unknown path (no token, no Redis)": timed(
                        lambda: client.get("/nowhere", 404), args.samples),
                    "HTTP, token + account look-up (unknown account)": timed(
                        lambda: client.get("/v1/account/nobody/mailboxes", 404), args.samples),
                }

                def direct_page():
                    direct.use_uid = False
                    try:
                        direct.fetch(list(range(exists - 19, exists + 1)), LIST_ITEMS)
                    finally:
                        direct.use_uid = True

                direct_list = timed(direct_page, args.samples)
                api_list = timed(lambda: client.get("/v1/account/bench/messages?pageSize=20"), args.samples)

                def direct_attachment():
                    raw = direct.fetch([uid], [attachment_section])[uid][f"BODY[{section}]".encode()]
                    assert len(base64.b64decode(raw)) == len(content)

                def api_attachment():
                    got = 0
                    with session.get(f"{url}/v1/account/bench/attachment/{attachment['id']}", stream=True,
                                     timeout=60) as download:
                        for chunk in download.iter_content(256 * 1024):
                            got += len(chunk)
                    assert got == len(content)

                direct_download = timed(direct_attachment, 3)
                api_download = timed(api_attachment, 3)

            def arrived(subject):
                with receiver.lock:
                    return next((r.at for r in receiver.requests
                                 if r.json["data"].get("subject") == subject), None)

            def new_mail_latency(tag: str) -> list[float]:
                out = []
                for n in range(args.mail):
                    subject = f"{tag} {n}"
                    sent = time.time()
                    dovecot.append("watch", subject=subject)
                    out.append(wait_for(lambda s=subject: arrived(s), timeout=60, interval=0.005,
                                        what=subject) - sent)
                    time.sleep(0.3)
                return out

            quiet = new_mail_latency("quiet")
            stop, reads = threading.Event(), []

            def reader():
                own = requests.Session()
                own.headers.update(session.headers)
                while not stop.is_set():
                    started = time.perf_counter()
                    own.get(target, timeout=30).raise_for_status()
                    reads.append(time.perf_counter() - started)

            threads = [threading.Thread(target=reader, daemon=True) for _ in range(20)]
            for thread in threads:
                thread.start()
            loaded = new_mail_latency("loaded")
            stop.set()
            for thread in threads:
                thread.join(30)

            mib = len(content) / (1024 * 1024)
            ratio = statistics.median(api_message) / statistics.median(direct_message)
            print(f"cpus {os.cpu_count()}, samples {args.samples}, attachment {mib:.0f} MiB")
            print(f"GET message:        API {ms(api_message, 2)}  | direct fetch {ms(direct_message, 2)}  "
                  f"| p50 ratio {ratio:.2f}x (goal <= 3x)")
            for what, values in floor.items():
                print(f"  of which, alone: {what}: {ms(values, 2)}")
            print(f"GET messages (20):  API {ms(api_list)}  | direct fetch {ms(direct_list)}  "
                  f"| p50 ratio {statistics.median(api_list) / statistics.median(direct_list):.2f}x")
            print(f"attachment:         API {mib / statistics.median(api_download):.1f} MiB/s  "
                  f"| direct fetch + decode {mib / statistics.median(direct_download):.1f} MiB/s")
            change = statistics.median(loaded) / statistics.median(quiet) - 1
            print(f"new mail (other account, same IMAP process): quiet {ms(quiet)}  | during 20 parallel "
                  f"API reads {ms(loaded)}  | p50 {change * 100:+.0f}% (goal within 10%)")
            print(f"API reads during that load: {len(reads)}, {ms(reads)}")
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(30)
            dovecot.close()
            redis_server.stop()


if __name__ == "__main__":
    main()
