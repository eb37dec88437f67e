"""Access tokens: 32 random bytes shown once as 64 hex characters; only their SHA-256 is stored.

Redis holds, per token, a hash `token:<sha256>` (description, scopes, created, last use time and
address) and the set `tokens` of all token hashes. The id shown to people is a prefix of the hash.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

import redis

from ..keys import Keys

SCOPES = ("*", "api", "metrics")
TOKEN_RE = re.compile(r"[0-9a-f]{64}")
ID_LENGTH = 12


class TokenError(Exception):
    """A request about tokens that cannot be honoured (unknown id, bad scope); show the message."""


@dataclass(frozen=True)
class Token:
    hash: str
    description: str
    scopes: tuple[str, ...]
    created: float
    last_used: float | None
    last_ip: str | None

    @property
    def id(self) -> str:
        return self.hash[:ID_LENGTH]

    def allows(self, scope: str) -> bool:
        return "*" in self.scopes or scope in self.scopes


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# KEYS: the token's hash key. ARGV: time, address. The token as it was, and its use recorded
# (in the same round trip as the check) when it exists.
_VERIFY_AND_RECORD = """
local found = redis.call('HGETALL', KEYS[1])
if redis.call('HEXISTS', KEYS[1], 'scopes') == 1 then
  redis.call('HSET', KEYS[1], 'last_used', ARGV[1], 'last_ip', ARGV[2])
end
return found
"""


class TokenStore:
    def __init__(self, conn: redis.Redis, keys: Keys):
        self.conn = conn
        self.keys = keys
        self._verify_and_record = conn.register_script(_VERIFY_AND_RECORD)

    def issue(self, scopes=("*",), description: str = "") -> str:
        """Create a token and return it; this is the only time the token itself exists."""
        token = secrets.token_hex(32)
        self.install(token, scopes, description)
        return token

    def install(self, token: str, scopes, description: str) -> Token:
        """Store a token given by the caller (the prepared token of the configuration)."""
        scopes = tuple(dict.fromkeys(scopes))
        bad = [s for s in scopes if s not in SCOPES]
        if bad or not scopes:
            raise TokenError(f"scope must be one of {', '.join(SCOPES)}, not {', '.join(bad) or 'nothing'}")
        if not TOKEN_RE.fullmatch(token):
            raise TokenError("a token is 64 lower-case hex characters")
        token_hash = hash_token(token)
        pipe = self.conn.pipeline()
        pipe.hset(self.keys.token(token_hash), mapping={
            "description": description, "scopes": ",".join(scopes)})
        pipe.hsetnx(self.keys.token(token_hash), "created", time.time())
        pipe.sadd(self.keys.tokens, token_hash)
        pipe.execute()
        return self._load(token_hash)

    def verify(self, token: str | None) -> Token | None:
        """The stored token matching `token`, or None. Malformed input is simply unknown."""
        token_hash = _presented_hash(token)
        return _matching(token_hash, self._load(token_hash)) if token_hash else None

    def verify_and_record(self, token: str | None, ip: str | None) -> Token | None:
        """verify() and record_use() in one round trip. Raises redis.ResponseError when Redis
        refuses the write (full, read-only, an ACL): then verify() alone still answers."""
        token_hash = _presented_hash(token)
        if not token_hash:
            return None
        flat = self._verify_and_record(keys=[self.keys.token(token_hash)], args=[time.time(), ip or ""])
        return _matching(token_hash, _token(token_hash, dict(zip(flat[::2], flat[1::2], strict=True))))

    def record_use(self, token: Token, ip: str | None) -> None:
        self.conn.hset(self.keys.token(token.hash), mapping={"last_used": time.time(), "last_ip": ip or ""})

    def list(self) -> list[Token]:
        hashes = sorted(h.decode() for h in self.conn.smembers(self.keys.tokens))
        tokens = [t for t in (self._load(h) for h in hashes) if t is not None]
        return sorted(tokens, key=lambda t: t.created)

    def revoke(self, token_id: str) -> Token:
        """Revoke by id (a unique prefix of the hash, at least 6 characters)."""
        token_id = token_id.strip().lower()
        if len(token_id) < 6 or not re.fullmatch(r"[0-9a-f]+", token_id):
            raise TokenError("give the token id (at least 6 hex characters, as `tokens list` shows)")
        matches = [t for t in self.list() if t.hash.startswith(token_id)]
        if not matches:
            raise TokenError(f"no token with id {token_id}")
        if len(matches) > 1:
            raise TokenError(f"id {token_id} matches {len(matches)} tokens; give more characters")
        token = matches[0]
        pipe = self.conn.pipeline()
        pipe.delete(self.keys.token(token.hash))
        pipe.srem(self.keys.tokens, token.hash)
        pipe.execute()
        return token

    def _load(self, token_hash: str) -> Token | None:
        return _token(token_hash, self.conn.hgetall(self.keys.token(token_hash)))


def _presented_hash(token: str | None) -> str | None:
    """The hash to look a presented token up by; None for malformed input (simply unknown)."""
    if not token or not TOKEN_RE.fullmatch(token):
        return None
    return hash_token(token)


def _matching(token_hash: str, found: Token | None) -> Token | None:
    # The lookup is by hash; compare the stored hash in constant time all the same.
    if found is None or not hmac.compare_digest(found.hash, token_hash):
        return None
    return found


def _token(token_hash: str, data: dict[bytes, bytes]) -> Token | None:
    if not data or b"scopes" not in data:
        return None
    d = {k.decode(): v.decode() for k, v in data.items()}
    return Token(
        hash=token_hash, description=d.get("description", ""),
        scopes=tuple(s for s in d["scopes"].split(",") if s),
        created=float(d.get("created") or 0),
        last_used=float(d["last_used"]) if d.get("last_used") else None,
        last_ip=d.get("last_ip") or None)
