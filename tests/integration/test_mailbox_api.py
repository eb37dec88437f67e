"""The mailbox API against real Dovecot, a real IMAP process and a real web process: every read
route with real messages (multipart, RFC 2047, 8-bit legacy charset, broken encodings), the
errors, and the messageNew webhook -> fetch path."""

from __future__ import annotations

import email
import email.policy

from shared.mail.message_ids import attachment_id, message_id
from support import mail
from support.imap import add_account, wait_event
from support.mailbox_fixtures import alice_fixture  # noqa: F401


def test_mailboxes(alice, api, dovecot):
    with dovecot.client("alice") as client:
        client.create_folder("Projects")
        client.subscribe_folder("Projects")
    found = api("GET", "/v1/account/alice/mailboxes")
    assert found.status_code == 200, found.text
    by_path = {m["path"]: m for m in found.json()["mailboxes"]}
    inbox = by_path["INBOX"]
    assert inbox["messages"] == 3 and inbox["unseen"] == 2
    assert inbox["uidValidity"] == alice["uidvalidity"] and inbox["uidNext"] == 4
    assert inbox["specialUse"] == "\\Inbox" and inbox["name"] == "INBOX"
    assert by_path["Projects"]["subscribed"] is True and by_path["Projects"]["messages"] == 0
    assert by_path["Projects"]["delimiter"] in (".", "/")


def test_messages_newest_first_and_paged(alice, api):
    page = api("GET", "/v1/account/alice/messages", params={"path": "INBOX", "pageSize": 2})
    assert page.status_code == 200, page.text
    body = page.json()
    assert (body["total"], body["page"], body["pages"]) == (3, 0, 2)
    assert [m["id"] for m in body["messages"]] == [alice["bad"], alice["legacy"]]
    legacy = body["messages"][1]
    assert legacy["subject"] == "Отчёт" and legacy["unseen"] is False and legacy["flags"] == ["\\Seen"]
    assert legacy["from"] == {"name": "", "address": "ivan@example.ru"}
    assert legacy["messageId"] == "<legacy@mailpulse.test>" and legacy["size"] > 0
    second = api("GET", "/v1/account/alice/messages", params={"pageSize": 2, "page": 1}).json()
    first = second["messages"][0]
    assert [m["id"] for m in second["messages"]] == [alice["multipart"]]
    assert first["subject"] == "Quarterly report" and first["unseen"] is True
    assert first["from"] == {"name": "Zoë Ärger", "address": "zoe@example.com"}
    assert first["to"] == [{"name": "Alice", "address": "alice@example.com"},
                           {"name": "", "address": "bob@example.com"}]
    assert first["cc"] == [{"name": "", "address": "carol@example.com"}]
    assert first["inReplyTo"] == "<earlier@mailpulse.test>"
    beyond = api("GET", "/v1/account/alice/messages", params={"pageSize": 2, "page": 5}).json()
    assert beyond["messages"] == [] and beyond["total"] == 3


def test_message_with_parts_text_attachment_and_source(alice, api, dovecot):
    found = api("GET", f"/v1/account/alice/message/{alice['multipart']}")
    assert found.status_code == 200, found.text
    message = found.json()
    assert message["subject"] == "Quarterly report" and message["uid"] == alice["uids"]["multipart"]
    assert message["from"] == {"name": "Zoë Ärger", "address": "zoe@example.com"}
    assert message["headers"]["in-reply-to"] == ["<earlier@mailpulse.test>"]
    assert "plain" not in message["text"]  # only with ?textType
    by_type = {a["contentType"]: a for a in message["attachments"]}
    assert set(by_type) == {"image/png", "application/pdf"}
    pdf, png = by_type["application/pdf"], by_type["image/png"]
    assert pdf["filename"] == "report.pdf" and pdf["inline"] is False and pdf["contentId"] is None
    assert png["contentId"] == "<logo@mailpulse.test>" and png["inline"] is True and png["embedded"]

    with_text = api("GET", f"/v1/account/alice/message/{alice['multipart']}", params={"textType": "*"}).json()
    assert with_text["text"]["plain"] == "Hello Alice,\nthe report is attached. Grüße\n"
    assert "cid:logo@mailpulse.test" in with_text["text"]["html"] and "Grüße" in with_text["text"]["html"]

    text = api("GET", f"/v1/account/alice/text/{message['text']['id']}", params={"textType": "plain"})
    assert text.status_code == 200, text.text
    assert text.json()["plain"].startswith("Hello Alice") and "html" not in text.json()

    download = api("GET", f"/v1/account/alice/attachment/{pdf['id']}")
    assert download.status_code == 200, download.text
    assert download.content == b"%PDF-1.4 report\n" * 100
    assert download.headers["Content-Type"] == "application/pdf"
    assert "filename=\"report.pdf\"" in download.headers["Content-Disposition"]
    assert api("GET", f"/v1/account/alice/attachment/{png['id']}").content == mail.PNG

    source = api("GET", f"/v1/account/alice/message/{alice['multipart']}/source")
    assert source.status_code == 200 and source.headers["Content-Type"] == "message/rfc822"
    with dovecot.client("alice") as client:
        client.select_folder("INBOX", readonly=True)
        uid = alice["uids"]["multipart"]
        raw = client.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"]
    assert source.content == raw
    parsed = email.message_from_bytes(source.content, policy=email.policy.default)
    assert parsed["Subject"] == "Quarterly report"
    # Reading never marked the message seen (BODY.PEEK).
    assert api("GET", f"/v1/account/alice/message/{alice['multipart']}").json()["unseen"] is True


def test_legacy_charset_and_broken_encodings_never_500(alice, api):
    legacy = api("GET", f"/v1/account/alice/message/{alice['legacy']}", params={"textType": "plain"})
    assert legacy.status_code == 200, legacy.text
    assert legacy.json()["subject"] == "Отчёт"
    assert legacy.json()["text"]["plain"].replace("\r\n", "\n") == "Привет, мир! Тест.\nbad byte: \ufffd\n"

    bad = api("GET", f"/v1/account/alice/message/{alice['bad']}", params={"textType": "*"})
    assert bad.status_code == 200, bad.text
    body = bad.json()
    assert "café" in body["subject"]  # the good word decoded, the broken one kept as it came
    assert body["from"]["address"] == "x@example.com"
    assert body["text"]["plain"].startswith("café \ufffd\ufffd end")  # unknown charset: UTF-8, replaced
    listed = api("GET", "/v1/account/alice/messages").json()["messages"]
    assert {m["id"] for m in listed} == {alice["bad"], alice["legacy"], alice["multipart"]}


def test_errors_name_what_is_wrong(alice, api, conn, dovecot):
    base = "/v1/account/alice"
    unknown = api("GET", "/v1/account/nobody/messages")
    assert unknown.status_code == 404 and "nobody" in unknown.json()["message"]

    malformed = api("GET", f"{base}/message/not-an-id")
    assert malformed.status_code == 400 and malformed.json()["fields"] == {"message": "is not a message id"}
    assert api("GET", f"{base}/attachment/{alice['multipart']}").json()["fields"] == {
        "attachment": "is not an attachment id"}
    assert api("GET", f"{base}/text/xyz").json()["fields"] == {"text": "is not a text id"}
    assert api("GET", f"{base}/messages", params={"pageSize": "0"}).json()["fields"] == {
        "pageSize": "must be a whole number from 1 to 250"}
    assert api("GET", f"{base}/message/{alice['legacy']}", params={"textType": "rtf"}).json()["fields"] == {
        "textType": "must be plain, html or *"}

    no_mailbox = api("GET", f"{base}/messages", params={"path": "Nowhere"})
    assert no_mailbox.status_code == 404 and "'Nowhere'" in no_mailbox.json()["message"]
    gone_uid = message_id("INBOX", alice["uidvalidity"], 999)
    missing = api("GET", f"{base}/message/{gone_uid}")
    assert missing.status_code == 404 and gone_uid in missing.json()["message"]
    old_generation = message_id("INBOX", alice["uidvalidity"] + 1, alice["uids"]["legacy"])
    assert api("GET", f"{base}/message/{old_generation}").status_code == 404
    wrong_mailbox = message_id("Archive", alice["uidvalidity"], alice["uids"]["legacy"])
    assert "'Archive'" in api("GET", f"{base}/message/{wrong_mailbox}").json()["message"]
    no_part = attachment_id("INBOX", alice["uidvalidity"], alice["uids"]["multipart"], "9")
    missing_part = api("GET", f"{base}/attachment/{no_part}")
    assert missing_part.status_code == 404 and no_part in missing_part.json()["message"]

    # Deleted between listing and fetching.
    listed = api("GET", f"{base}/messages").json()["messages"]
    with dovecot.client("alice") as client:
        client.select_folder("INBOX")
        client.delete_messages([alice["uids"]["bad"]])
        client.expunge()
    vanished = api("GET", f"{base}/message/{listed[0]['id']}")
    assert vanished.status_code == 404 and listed[0]["id"] in vanished.json()["message"]
    assert api("GET", f"{base}/message/{listed[0]['id']}/source").status_code == 404


def test_route_labels_stay_templates(alice, api, web, env):
    from support.webhooks import counter, metric_samples

    api("GET", f"/v1/account/alice/message/{alice['legacy']}")
    api("GET", "/v1/account/alice/message/not-an-id")
    samples = metric_samples(env["PROMETHEUS_MULTIPROC_DIR"])
    routes = {dict(labels).get("route") for (name, labels) in samples if name.startswith("api_call")}
    assert "/v1/account/{account}/message/{message}" in routes
    assert not any(alice["legacy"] in (r or "") for r in routes)
    assert counter(samples, "api_call", method="get", statusCode="400",
                   route="/v1/account/{account}/message/{message}") == 1
    # The IMAP process counted the call it served (the malformed one never reached it).
    assert counter(samples, "mailpulse_imap_api_requests", op="message") == 1


def test_not_connected_and_deadline(conn, dovecot, imap_env, spawn, env):
    from support.imap import hold_elsewhere
    from support.servers import start_web

    add_account(conn, dovecot, "idle-nobody")
    add_account(conn, dovecot, "held-by-ghost")
    hold_elsewhere(conn, "held-by-ghost")  # a live lease, but no process reads its requests
    env["API_TIMEOUT"] = "1"
    web = start_web(spawn, env)
    from shared.keys import Keys
    from shared.stores.tokens import TokenStore

    token = TokenStore(conn, Keys("")).issue(("api",))
    import requests

    headers = {"Authorization": f"Bearer {token}"}
    unheld = requests.get(f"{web.url}/v1/account/idle-nobody/mailboxes", headers=headers, timeout=10)
    assert unheld.status_code == 503 and "not connected" in unheld.json()["message"]
    ghost = requests.get(f"{web.url}/v1/account/held-by-ghost/mailboxes", headers=headers, timeout=10)
    assert ghost.status_code == 504 and ghost.json()["error"] == "Gateway Timeout"


def test_webhook_to_fetch(conn, dovecot, imap_env, spawn, receiver, delivering, api):
    add_account(conn, dovecot, "dora")
    spawn("workers.imap", imap_env)
    wait_event(receiver, "accountInitialized", "dora")
    with dovecot.client("dora") as client:
        mail.append(client, mail.multipart(subject="Webhook then fetch"))
    new = wait_event(receiver, "messageNew", "dora")
    fetched = api("GET", f"/v1/account/dora/message/{new['data']['id']}", params={"textType": "plain"})
    assert fetched.status_code == 200, fetched.text
    assert fetched.json()["subject"] == "Webhook then fetch" == new["data"]["subject"]
    assert fetched.json()["text"]["plain"].startswith("Hello Alice")
    pdf = next(a for a in fetched.json()["attachments"] if a["filename"] == "report.pdf")
    assert api("GET", f"/v1/account/dora/attachment/{pdf['id']}").content == b"%PDF-1.4 report\n" * 100
