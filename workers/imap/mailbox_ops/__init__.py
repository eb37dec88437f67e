"""The mailbox API's operations, each on one command connection: EmailEngine's JSON shapes.

An operation takes (client, params, replier): params as the web checked them, the replier to
answer (or to stream). What the caller should answer instead is raised as ApiError (404 naming
the mailbox, message, text or attachment; 400 naming a field); connection failures propagate.
"""

from __future__ import annotations

from .changes import delete_message, move_message, update_flags
from .listing import list_mailboxes, list_messages, search_messages
from .message import get_message, get_text
from .selecting import ApiError
from .streams import get_attachment, get_source

__all__ = ["OPS", "ApiError"]

OPS = {"mailboxes": list_mailboxes, "messages": list_messages, "message": get_message,
       "text": get_text, "source": get_source, "attachment": get_attachment, "flags": update_flags,
       "move": move_message, "delete": delete_message, "search": search_messages}
