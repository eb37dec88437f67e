"""Names of every Redis key mailpulse owns, in one place, all under REDIS_PREFIX."""

QUEUE_NAMES = ("notify", "submit")  # rq queues of the system, as the metric label `queue` names them


class Keys:
    def __init__(self, prefix: str = ""):
        self.prefix = prefix
        base = f"{prefix}mp:"
        self.tokens = base + "tokens"  # set of token hashes
        self.heartbeats = base + "heartbeats"  # zset worker id -> last beat (unix time)
        self.workers = base + "workers"  # hash worker id -> json {type, host, pid, started}
        self.secret_fingerprint = base + "secret-fingerprint"
        self.health_probe = base + "health-probe"
        self.settings = base + "settings"  # hash setting name -> JSON value (the /v1/settings store)
        self.webhook_error = base + "webhook-error"  # JSON of the last final delivery failure
        self.accounts = base + "accounts"  # zset account id -> created (unix time)
        self.account_changes = base + "account-changes"  # pub/sub channel, see shared.stores.accounts
        self.admin_password = base + "admin-password"  # scrypt record of the admin pages' password
        # Account changes as a log: zset account id -> sequence number of its last change, so an
        # IMAP process reads only what changed since it last looked (shared/stores/accounts.py).
        self.account_log = base + "account-log"
        self.account_log_seq = base + "account-log-seq"
        self.account_tombstones = base + "account-tombstones"  # zset deleted id -> unix time
        # IMAP leases (shared/stores/leases.py): processes' own leases, and who holds which account.
        self.imap_leases = base + "imap-leases"  # zset worker id -> lease expiry (ms, Redis time)
        self.imap_free = base + "imap-free"  # set of account ids no IMAP process holds
        self.imap_leases_ready = base + "imap-leases-ready"  # accounts from before the sets adopted
        self.unheld_reporter = base + "unheld-reporter"  # the host whose /metrics counts unheld accounts
        self.smtp_accounts = base + "smtp-accounts"  # set of account ids with SMTP settings (/health)
        self._base = base

    def token(self, token_hash: str) -> str:
        return f"{self._base}token:{token_hash}"

    def account(self, account_id: str) -> str:
        """Hash of one account's record (its field `webhooks` overrides the global webhook URL)."""
        return f"{self._base}account:{account_id}"

    def admin_session(self, session_hash: str) -> str:
        """Hash of one admin login session, keyed by the SHA-256 of the cookie's session id."""
        return f"{self._base}admin-session:{session_hash}"

    def admin_login_failures(self, address: str) -> str:
        """Counter of failed admin logins from one client address (expires: rate limiting)."""
        return f"{self._base}admin-login-failures:{address}"

    def webhook_attempts(self, minute: int) -> str:
        """Hash {success, fail} of webhook attempts in one minute (unix time // 60), expiring."""
        return f"{self._base}webhook-attempts:{minute}"

    def imap_held(self, worker_id: str) -> str:
        """Set of the account ids one IMAP process holds."""
        return f"{self._base}imap-held:{worker_id}"

    def account_lease(self, account_id: str) -> str:
        """Worker id of the IMAP process holding the account; see shared/stores/leases.py."""
        return self.account(account_id) + ":lease"

    # -- an IMAP account's sync state (workers/imap/syncstate.py), deleted by name with the account
    def account_status(self, account_id: str) -> str:
        return self.account(account_id) + ":status"

    def account_mailboxes(self, account_id: str) -> str:
        """Hash path -> JSON of the mailbox as last synced; its fields name the per-path keys."""
        return self.account(account_id) + ":mailboxes"

    def account_flags(self, account_id: str, path: str) -> str:
        """Hash uid -> flags of every known message of one mailbox."""
        return self.account(account_id) + ":uids:" + path

    def account_index(self, account_id: str, path: str) -> str:
        """Sorted set of the known UIDs of one mailbox (score = UID): ranges and ranks."""
        return self.account(account_id) + ":index:" + path

    def account_keys(self, account_id: str, paths) -> list[str]:
        """Every key of one account, given the paths of its mailboxes (the account hash's fields)."""
        names = [self.account(account_id), self.account_lease(account_id), self.account_status(account_id),
                 self.account_mailboxes(account_id)]
        for path in paths:
            names += [self.account_flags(account_id, path), self.account_index(account_id, path)]
        return names

    # -- the mailbox API's request/reply channel (shared/mail/mailbox_channel.py)
    def imap_requests(self, worker_id: str) -> str:
        """List of API requests (JSON) for one IMAP process, pushed by web, popped by it."""
        return f"{self._base}imap-requests:{worker_id}"

    def api_reply(self, request_id: str) -> str:
        """List of the reply frames of one API request (expires)."""
        return f"{self._base}api-reply:{request_id}"

    def api_gone(self, request_id: str) -> str:
        """Set when the web stopped reading a streamed reply (the client went away)."""
        return f"{self._base}api-gone:{request_id}"

    def webhook_aside(self) -> str:
        """List of the targets (scheme://host:port) with webhook jobs waiting aside: a ring the
        claim rotates. Each target's jobs wait in order in the list `<this key>:<target>`."""
        return f"{self._base}notify-aside"

    def queue(self, name: str) -> str:
        """rq queue name: the prefix keeps installs sharing one Redis apart."""
        return self.prefix + name
