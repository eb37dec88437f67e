"""Changing mail through the mailbox API, against real Dovecot: flags, move, delete (to Trash or
expunged), and search; each change checked on the server itself."""

from __future__ import annotations

from shared.mail.message_ids import parse_message_id
from support.mailbox_fixtures import alice_fixture  # noqa: F401


def _flags_on_server(dovecot, uid: int, folder: str = "INBOX") -> set:
    with dovecot.client("alice") as client:
        client.select_folder(folder, readonly=True)
        return set(client.get_flags([uid]).get(uid, ()))


def test_flags_add_delete_set(alice, api, dovecot):
    url = f"/v1/account/alice/message/{alice['multipart']}"
    uid = alice["uids"]["multipart"]
    added = api("PUT", url, json={"flags": {"add": ["\\Seen", "\\Flagged", "$Important"]}})
    assert added.status_code == 200, added.text
    assert added.json()["flags"] == {"add": True}
    assert _flags_on_server(dovecot, uid) == {b"\\Seen", b"\\Flagged", b"$Important"}
    api("PUT", url, json={"flags": {"delete": ["\\Flagged"]}})
    assert _flags_on_server(dovecot, uid) == {b"\\Seen", b"$Important"}
    result = api("PUT", url, json={"flags": {"set": ["\\Answered"]}}).json()
    assert result["value"] == ["\\Answered"] and _flags_on_server(dovecot, uid) == {b"\\Answered"}
    assert api("GET", url).json()["unseen"] is True

    bad = api("PUT", url, json={"flags": {"add": ["not a flag"]}})
    assert bad.status_code == 400 and bad.json()["fields"] == {
        "flags.add": "must be a list of flags (such as \\Seen or $Label)"}
    assert api("PUT", url, json={"flags": {"toggle": []}}).json()["fields"].keys() == {"flags"}
    assert api("PUT", url, data="not json").json()["fields"] == {"body": "must be a JSON object"}


def test_move_and_fetch_at_the_new_place(alice, api, dovecot):
    with dovecot.client("alice") as client:
        client.create_folder("Projects")
    moved = api("PUT", f"/v1/account/alice/message/{alice['legacy']}/move", json={"path": "Projects"})
    assert moved.status_code == 200, moved.text
    body = moved.json()
    assert body["path"] == "Projects" and parse_message_id(body["id"])[0] == "Projects"
    fetched = api("GET", f"/v1/account/alice/message/{body['id']}")
    assert fetched.status_code == 200 and fetched.json()["subject"] == "Отчёт"
    assert api("GET", f"/v1/account/alice/message/{alice['legacy']}").status_code == 404
    listed = api("GET", "/v1/account/alice/messages", params={"path": "INBOX"}).json()
    assert listed["total"] == 2

    nowhere = api("PUT", f"/v1/account/alice/message/{alice['bad']}/move", json={"path": "Nowhere"})
    assert nowhere.status_code == 404 and "'Nowhere'" in nowhere.json()["message"]
    assert api("PUT", f"/v1/account/alice/message/{alice['bad']}/move", json={}).json()["fields"].keys() == {
        "path"}


def test_delete_to_trash_then_for_good(alice, api, dovecot):
    with dovecot.client("alice") as client:
        client.create_folder("Trash")
    deleted = api("DELETE", f"/v1/account/alice/message/{alice['bad']}")
    assert deleted.status_code == 200, deleted.text
    body = deleted.json()
    assert body["deleted"] is False and body["moved"]["destination"] == "Trash"
    in_trash = body["moved"]["message"]
    assert api("GET", "/v1/account/alice/messages", params={"path": "Trash"}).json()["total"] == 1
    # Deleting in Trash expunges.
    assert api("DELETE", f"/v1/account/alice/message/{in_trash}").json() == {"deleted": True}
    assert api("GET", "/v1/account/alice/messages", params={"path": "Trash"}).json()["total"] == 0

    forced = api("DELETE", f"/v1/account/alice/message/{alice['legacy']}", params={"force": "true"})
    assert forced.json() == {"deleted": True}
    with dovecot.client("alice") as client:
        client.select_folder("INBOX")
        assert client.search() == [alice["uids"]["multipart"]]
    assert api("DELETE", f"/v1/account/alice/message/{alice['legacy']}").status_code == 404
    assert api("DELETE", f"/v1/account/alice/message/{alice['multipart']}",
               params={"force": "yes"}).json()["fields"] == {"force": "must be true or false"}


def test_search(alice, api):
    def search(criteria: dict, **params):
        found = api("POST", "/v1/account/alice/search", params={"path": "INBOX", **params},
                    json={"search": criteria})
        assert found.status_code == 200, found.text
        return found.json()

    assert [m["id"] for m in search({"seen": False})["messages"]] == [alice["bad"], alice["multipart"]]
    assert [m["id"] for m in search({"seen": True})["messages"]] == [alice["legacy"]]
    assert [m["id"] for m in search({"subject": "quarterly"})["messages"]] == [alice["multipart"]]
    assert [m["id"] for m in search({"from": "ivan@example.ru"})["messages"]] == [alice["legacy"]]
    assert [m["id"] for m in search({"body": "Grüße"})["messages"]] == [alice["multipart"]]
    assert [m["id"] for m in search({"larger": 2000})["messages"]] == [alice["multipart"]]
    assert search({"smaller": 2000})["total"] == 2
    assert search({"since": "2000-01-01"})["total"] == 3 and search({"before": "2000-01-01"})["total"] == 0
    uids = alice["uids"]
    assert [m["uid"] for m in search({"uid": f"{uids['multipart']}:{uids['legacy']}"})["messages"]] == [
        uids["legacy"], uids["multipart"]]
    paged = search({}, pageSize=2, page=1)
    assert (paged["total"], paged["pages"]) == (3, 2)
    assert [m["id"] for m in paged["messages"]] == [alice["multipart"]]

    def refused(criteria: dict) -> dict:
        answer = api("POST", "/v1/account/alice/search", json={"search": criteria})
        assert answer.status_code == 400
        return answer.json()["fields"]

    assert refused({"since": "yesterday"}) == {
        "search.since": "must be a date (ISO 8601, such as 2024-05-01)"}
    assert refused({"colour": "red"}) == {"search.colour": "is not a search field this server knows"}
    assert refused({"seen": "yes"}) == {"search.seen": "must be true or false"}
    assert refused({"uid": "1:x"}) == {"search.uid": "must be a UID set (such as 1:100 or 5,7,9)"}
