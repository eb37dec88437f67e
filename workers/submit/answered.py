"""After a reply is sent: flag the original `\\Answered` (as EmailEngine does), through the IMAP
process that holds the account (the mailbox channel, as the mailbox API's PUT of flags).

Never a failed send: the reply is out. An account no IMAP process serves at that moment, a
holder that does not answer within API_TIMEOUT, an original that is gone: logged, left unflagged,
not retried. A send repeated after a crash flags again, which changes nothing.
"""

from __future__ import annotations

import logging

import redis

from shared.mail.mailbox_client import ChannelError, MailboxChannel

log = logging.getLogger(__name__)
ANSWERED = "\\Answered"


def flag_answered(channel: MailboxChannel, account: str, original: dict) -> bool:
    """`original`: the message id params ({id, path, uidvalidity, uid}) the web stored with the job."""
    try:
        reply = channel.call(account, "flags", {**original, "flags": {"add": [ANSWERED]}})
    except ChannelError as exc:
        log.warning("account %s: the original of a reply was not flagged \\Answered: %s", account, exc)
        return False
    except redis.RedisError as exc:
        log.warning("account %s: the original of a reply was not flagged \\Answered (Redis: %s)",
                    account, type(exc).__name__)
        return False
    if reply.status != 200:
        log.warning("account %s: the original of a reply was not flagged \\Answered: %s %s", account,
                    reply.status, (reply.body or {}).get("message", ""))
        return False
    return True
