"""The copy of a sent message in the account's Sent folder, over a short IMAP connection of the
submit worker's own (imapclient, the IMAP worker's connect and login: STARTTLS whenever offered,
verified certificates). The folder is the one with special-use `\\Sent`, else imapclient's usual
names ("Sent", "Sent Items", ...). A failed copy is logged, never a failed send: the message is
out, and sending it again to make a copy would double it.
"""

from __future__ import annotations

import logging

from imapclient.imapclient import SENT

from shared.stores.accounts import AccountStore
from workers.imap.client import connect, login

log = logging.getLogger(__name__)
TIMEOUT = 30


def append_to_sent(accounts: AccountStore, account: str, record: dict, raw: bytes) -> str | None:
    """Append `raw` (flagged \\Seen) to the Sent folder; returns the folder, None when there is none.
    `record`: the account's hash as read for the send."""
    settings = accounts.imap_settings(account, record)
    if settings is None:
        return None
    client = connect(settings.host, settings.port, settings.secure, TIMEOUT)
    try:
        login(client, settings.user, settings.password)
        folder = client.find_special_folder(SENT)
        if folder is None:
            return None
        client.append(folder, raw, flags=[b"\\Seen"])
        return folder
    finally:
        try:
            client.logout()
        except Exception:  # noqa: BLE001 - the copy is made or not; the connection goes either way
            pass


def copy_quietly(accounts: AccountStore, account: str, record: dict, raw: bytes) -> None:
    try:
        folder = append_to_sent(accounts, account, record, raw)
        if folder is None:
            log.info("account %s: no Sent folder (or no IMAP settings); no copy kept", account)
    except Exception as exc:  # noqa: BLE001 - see the module docstring
        log.warning("account %s: could not append the sent message to Sent: %s", account,
                    type(exc).__name__)
