"""A 20 MB attachment and its message's source through the mailbox API: streamed in ranges, so
the resident memory of neither the IMAP process nor the web process grows with it."""

from __future__ import annotations

import hashlib
import os

from shared.mail.message_ids import message_id
from support import mail
from support.imap import add_account, wait_state

SIZE = 20 * 1024 * 1024
MiB = 1024 * 1024


def _memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (the peak resident size) of a process, in bytes."""
    found = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found[name] = int(value.split()[0]) * 1024
    return found


def test_20_mb_attachment_and_source_are_streamed(conn, dovecot, imap_env, spawn, web, api):
    add_account(conn, dovecot, "big")
    content = os.urandom(SIZE)
    with dovecot.client("big") as client:
        uid = mail.append(client, mail.multipart(subject="Big one", attachment=content, filename="big.bin",
                                                 subtype="octet-stream"))
        uidvalidity = client.select_folder("INBOX")[b"UIDVALIDITY"]
    imap = spawn("workers.imap", imap_env)
    wait_state(conn, "big", "connected")
    message = api("GET", f"/v1/account/big/message/{message_id('INBOX', uidvalidity, uid)}").json()
    attachment = next(a for a in message["attachments"] if a["filename"] == "big.bin")
    assert abs(attachment["size"] - SIZE) < SIZE / 100  # estimated from the base64 size
    # A first small download: both processes have loaded what a download needs.
    small = next(a for a in message["attachments"] if a["contentType"] == "image/png")
    assert api("GET", f"/v1/account/big/attachment/{small['id']}").content == mail.PNG
    start = {"imap": _memory(imap.pid), "web": _memory(web.pid)}

    def download_attachment():
        digest, received = hashlib.sha256(), 0
        with api("GET", f"/v1/account/big/attachment/{attachment['id']}", stream=True) as download:
            assert download.status_code == 200
            assert download.headers["Content-Type"] == "application/octet-stream"
            assert download.headers.get("Transfer-Encoding") == "chunked"  # never buffered whole
            for chunk in download.iter_content(64 * 1024):
                digest.update(chunk)
                received += len(chunk)
        assert received == SIZE and digest.digest() == hashlib.sha256(content).digest()

    download_attachment()
    warm = {"imap": _memory(imap.pid), "web": _memory(web.pid)}
    download_attachment()
    download_attachment()  # more requests, on other threads of the web process
    source_size = 0
    with api("GET", f"/v1/account/big/message/{message['id']}/source", stream=True) as source:
        assert int(source.headers["Content-Length"]) == message["size"]
        for chunk in source.iter_content(64 * 1024):
            source_size += len(chunk)
    assert source_size == message["size"] > SIZE
    end = {"imap": _memory(imap.pid), "web": _memory(web.pid)}

    for process in ("imap", "web"):
        first = warm[process]["VmHWM"] - start[process]["VmHWM"]
        more = end[process]["VmHWM"] - warm[process]["VmHWM"]
        print(f"{process}: RSS {start[process]['VmRSS'] / MiB:.1f} -> {end[process]['VmRSS'] / MiB:.1f} MiB; "
              f"peak +{first / MiB:.1f} MiB in the first 20 MiB download, +{more / MiB:.1f} MiB in "
              f"the next {(SIZE + source_size) / MiB:.0f} MiB")
        # The first download: a few 256 KiB chunks in flight and the buffers they leave (never
        # the attachment); after that, flat: more mail moved costs no more memory.
        assert first < 12 * MiB, (process, start[process], warm[process])
        assert more < 3 * MiB, (process, warm[process], end[process])


def test_a_reader_that_goes_away_stops_the_stream(conn, dovecot, imap_env, spawn, web, api):
    add_account(conn, dovecot, "quitter")
    with dovecot.client("quitter") as client:
        uid = mail.append(client, mail.multipart(attachment=os.urandom(SIZE // 2), filename="half.bin"))
        uidvalidity = client.select_folder("INBOX")[b"UIDVALIDITY"]
    imap = spawn("workers.imap", imap_env)
    wait_state(conn, "quitter", "connected")
    message = api("GET", f"/v1/account/quitter/message/{message_id('INBOX', uidvalidity, uid)}").json()
    half = next(a for a in message["attachments"] if a["filename"] == "half.bin")
    with api("GET", f"/v1/account/quitter/attachment/{half['id']}", stream=True) as download:
        next(download.iter_content(64 * 1024))  # read a little, then hang up
    from support.servers import wait_for

    wait_for(lambda: "stream stopped, the reader went away" in imap.output(), timeout=60,
             what="the IMAP process to stop streaming")
    assert not [k for k in conn.scan_iter("mp:api-reply:*") if conn.llen(k) > 0 and conn.ttl(k) == -1]
    # The account's connection is usable for the next call.
    assert api("GET", f"/v1/account/quitter/message/{message['id']}").status_code == 200
