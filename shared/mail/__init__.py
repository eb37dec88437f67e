"""Mail as the API and the workers pass it around: ids, messages to send, the mailbox channel.

Message ids of the mailbox API (`message_ids`), EmailEngine's submit body validated and built into
MIME (`submission`, `outgoing`), the submit queue the web process fills and the submit workers
drain (`submit_queue`), and the request/reply channel to the IMAP process holding an account
(`mailbox_channel`: its frames; `mailbox_client`: the calling side, used by the web process and
the submit worker). Imports the plumbing of `shared` and `shared.stores`; never `shared.metrics`.
"""
