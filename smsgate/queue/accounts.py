"""Store operations for staff accounts, login attempts, web sessions and API tokens.

Secrets never reach the database in the clear: passwords are hashed by `werkzeug.security` (scrypt), and
session ids and API tokens are stored as SHA-256 digests (they are long random values, so a fast hash is enough), which
makes a copied database useless for logging in.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from werkzeug.security import check_password_hash, generate_password_hash

from .audit import AuditLog
from .clock import ts
from .db import Db
from .errors import NotFound, StoreError

ROLES = ("admin", "staff", "viewer")
SCOPES = ("send", "read", "admin")
TOKEN_PREFIX = "smsg_"
# Hashes written before werkzeug.security was used look like `scrypt$16384$8$1$salt$digest`; they are still
# accepted, and replaced by a current hash at the user's next successful login.
LEGACY_PREFIX = "scrypt$"
MIN_PASSWORD_LENGTH = 10


class AccountError(StoreError):
    """A user or token operation was refused (duplicate name, weak password, unknown role)."""


@dataclass(frozen=True)
class User:
    id: int
    username: str
    role: str
    disabled: bool
    created_at: str
    last_login_at: str | None


@dataclass(frozen=True)
class ApiToken:
    id: int
    name: str
    prefix: str
    scope: str
    created_by: str | None
    created_at: str
    last_used_at: str | None
    revoked_at: str | None


@dataclass(frozen=True)
class WebSession:
    id: int
    user: User
    created_at: str
    last_seen_at: str


def hash_password(password: str) -> str:
    return generate_password_hash(password)


def verify_password(password: str, stored: str) -> bool:
    if stored.startswith(LEGACY_PREFIX):
        return _verify_legacy(password, stored)
    try:
        return check_password_hash(stored, password)
    except (ValueError, TypeError):
        return False  # not a hash werkzeug knows: treat as a wrong password, never as a crash


def needs_rehash(stored: str) -> bool:
    return stored.startswith(LEGACY_PREFIX)


def _verify_legacy(password: str, stored: str) -> bool:
    try:
        _algo, n, r, p, salt, digest = stored.split("$")
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                                dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _user(row: dict[str, Any]) -> User:
    return User(row["id"], row["username"], row["role"], bool(row["disabled"]), row["created_at"],
                row["last_login_at"])


def _token(row: dict[str, Any]) -> ApiToken:
    return ApiToken(row["id"], row["name"], row["prefix"], row["scope"], row["created_by"], row["created_at"],
                    row["last_used_at"], row["revoked_at"])


class Accounts:
    """Staff users, login attempts, web sessions and API tokens."""

    def __init__(self, db: Db, *, audit: AuditLog) -> None:
        self.db = db
        self.audit = audit

    # -- users ---------------------------------------------------------------------------------------
    def add_user(self, username: str, password: str, role: str, *, actor: str) -> User:
        username = username.strip()
        if not username or len(username) > 64 or any(c.isspace() for c in username):
            raise AccountError("a user name is 1-64 characters without spaces")
        if role not in ROLES:
            raise AccountError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        if len(password) < MIN_PASSWORD_LENGTH:
            raise AccountError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
        hashed = hash_password(password)
        with self.db.transaction():
            if self.db.one("SELECT 1 FROM users WHERE username = ?", (username,)):
                raise AccountError(f"user {username!r} already exists; pick another name")
            cur = self.db.execute("INSERT INTO users (username, password_hash, role, created_at) VALUES (?,?,?,?)",
                                  (username, hashed, role, self.db.now()))
            user_id = int(cur.lastrowid or 0)
            self.audit.record(actor, "user.add", "user", user_id, {"username": username, "role": role})
            return _user(self.db.row("SELECT * FROM users WHERE id = ?", (user_id,)))

    def get_user(self, username: str) -> User | None:
        row = self.db.one("SELECT * FROM users WHERE username = ?", (username,))
        return _user(row) if row else None

    def list_users(self) -> list[User]:
        return [_user(r) for r in self.db.all("SELECT * FROM users ORDER BY username")]

    def disable_user(self, username: str, *, actor: str) -> None:
        """Disable an account and end its open sessions at once."""
        with self.db.transaction():
            row = self.db.one("SELECT id FROM users WHERE username = ?", (username,))
            if row is None:
                raise NotFound(f"no user {username!r}; `smsgate users list` shows them")
            self.db.execute("UPDATE users SET disabled = 1 WHERE id = ?", (row["id"],))
            self.db.execute("DELETE FROM web_sessions WHERE user_id = ?", (row["id"],))
            self.audit.record(actor, "user.disable", "user", row["id"], {"username": username})

    def check_password(self, username: str, password: str) -> User | None:
        """The user if `password` is theirs and the account is enabled; None otherwise (same cost either way)."""
        row = self.db.one("SELECT * FROM users WHERE username = ?", (username,))
        # Hash even for an unknown user, so timing does not tell which user names exist. While any
        # account still has a hash from before werkzeug.security (a cheaper scrypt), every check also
        # pays for one of those, real or dummy, so old and new accounts and unknown names cost the same.
        stored = row["password_hash"] if row else _dummy_hash()
        ok = verify_password(password, stored)
        if self._legacy_hashes_remain():
            if needs_rehash(stored):
                verify_password(password, _dummy_hash())
            else:
                verify_password(password, _dummy_legacy_hash())
        if row is None or not ok or row["disabled"]:
            return None
        if needs_rehash(stored):
            self.db.execute("UPDATE users SET password_hash = ? WHERE id = ?",
                            (hash_password(password), row["id"]))
        return _user(row)

    def _legacy_hashes_remain(self) -> bool:
        return bool(self.db.scalar("SELECT EXISTS (SELECT 1 FROM users WHERE password_hash LIKE ?)",
                                   (LEGACY_PREFIX + "%",)))

    # -- login attempts ------------------------------------------------------------------------------
    def record_login_attempt(self, username: str, remote_addr: str | None, ok: bool) -> None:
        self.db.execute("INSERT INTO login_attempts (username, remote_addr, at, ok) VALUES (?,?,?,?)",
                        (username, remote_addr, self.db.now(), int(ok)))

    def failed_logins(self, *, username: str, remote_addr: str | None, seconds: float) -> tuple[int, int]:
        """Failed attempts in the last `seconds` for this user name, and from this address."""
        since = ts(self.db.clock() - timedelta(seconds=seconds))
        by_user = self.db.scalar("SELECT COUNT(*) FROM login_attempts WHERE username = ? AND at >= ? AND ok = 0",
                                 (username, since))
        by_addr = self.db.scalar("SELECT COUNT(*) FROM login_attempts WHERE remote_addr IS ? AND at >= ?"
                                 " AND ok = 0", (remote_addr, since))
        return int(by_user), int(by_addr)

    # -- web sessions --------------------------------------------------------------------------------
    def start_session(self, user: User, remote_addr: str | None) -> str:
        """A new session for `user`; returns the session id (only its hash is stored)."""
        sid = secrets.token_urlsafe(32)
        now = self.db.now()
        with self.db.transaction():
            self.db.execute("INSERT INTO web_sessions (sid_hash, user_id, created_at, last_seen_at, remote_addr)"
                            " VALUES (?,?,?,?,?)", (_sha256(sid), user.id, now, now, remote_addr))
            self.db.execute("UPDATE users SET last_login_at = ? WHERE id = ?", (now, user.id))
            self.audit.record(user.username, "login", "user", user.id, {"remote_addr": remote_addr})
        return sid

    def get_session(self, sid: str, *, idle_seconds: float, touch_after: float = 30.0) -> WebSession | None:
        """The live session for `sid`, or None (unknown, idle too long, or its user disabled).

        `last_seen_at` is written at most every `touch_after` seconds, so page views stay reads.
        """
        row = self.db.one(
            "SELECT s.id AS sid, s.created_at AS s_created, s.last_seen_at, u.* FROM web_sessions s"
            " JOIN users u ON u.id = s.user_id WHERE s.sid_hash = ?", (_sha256(sid),))
        if row is None:
            return None
        now = self.db.clock()
        if row["disabled"] or row["last_seen_at"] < ts(now - timedelta(seconds=idle_seconds)):
            self.db.execute("DELETE FROM web_sessions WHERE id = ?", (row["sid"],))
            return None
        if row["last_seen_at"] < ts(now - timedelta(seconds=touch_after)):
            self.db.execute("UPDATE web_sessions SET last_seen_at = ? WHERE id = ?", (ts(now), row["sid"]))
        return WebSession(row["sid"], _user(row), row["s_created"], row["last_seen_at"])

    def end_session(self, sid: str, *, actor: str) -> None:
        with self.db.transaction():
            cur = self.db.execute("DELETE FROM web_sessions WHERE sid_hash = ?", (_sha256(sid),))
            if cur.rowcount:
                self.audit.record(actor, "logout", "user", None, None)

    # -- API tokens ----------------------------------------------------------------------------------
    def create_token(self, name: str, scope: str, *, actor: str) -> tuple[ApiToken, str]:
        """A new token; returns its record and the secret, which is shown once and never stored."""
        if scope not in SCOPES:
            raise AccountError(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
        if not name.strip():
            raise AccountError("give the token a name that says who uses it, e.g. 'scheduling-system'")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        prefix = secret[: len(TOKEN_PREFIX) + 6]
        with self.db.transaction():
            cur = self.db.execute("INSERT INTO api_tokens (name, prefix, token_hash, scope, created_by, created_at)"
                                  " VALUES (?,?,?,?,?,?)", (name.strip(), prefix, _sha256(secret), scope, actor,
                                                            self.db.now()))
            token_id = int(cur.lastrowid or 0)
            self.audit.record(actor, "token.create", "token", token_id,
                              {"name": name, "scope": scope, "prefix": prefix})
            token = _token(self.db.row("SELECT * FROM api_tokens WHERE id = ?", (token_id,)))
        return token, secret

    def list_tokens(self) -> list[ApiToken]:
        return [_token(r) for r in self.db.all("SELECT * FROM api_tokens ORDER BY id")]

    def revoke_token(self, token_id: int, *, actor: str) -> None:
        with self.db.transaction():
            row = self.db.one("SELECT revoked_at FROM api_tokens WHERE id = ?", (token_id,))
            if row is None:
                raise NotFound(f"no API token #{token_id}; `smsgate tokens list` shows them")
            if row["revoked_at"] is None:
                self.db.execute("UPDATE api_tokens SET revoked_at = ? WHERE id = ?", (self.db.now(), token_id))
                self.audit.record(actor, "token.revoke", "token", token_id, None)

    def token_for_secret(self, secret: str) -> ApiToken | None:
        """The live token with this secret, or None; notes when it was last used (at most once a minute)."""
        row = self.db.one("SELECT * FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL", (_sha256(secret),))
        if row is None:
            return None
        now = self.db.clock()
        if row["last_used_at"] is None or row["last_used_at"] < ts(now - timedelta(seconds=60)):
            self.db.execute("UPDATE api_tokens SET last_used_at = ? WHERE id = ?", (ts(now), row["id"]))
        return _token(row)


@functools.cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


@functools.cache
def _dummy_legacy_hash() -> str:
    """A hash of the pre-werkzeug form and cost, for the timing rule in `check_password`."""
    salt, n, r, p = secrets.token_bytes(16), 2**14, 8, 1
    digest = hashlib.scrypt(secrets.token_bytes(16), salt=salt, n=n, r=r, p=p, dklen=32)
    b64 = base64.b64encode
    return f"{LEGACY_PREFIX}{n}${r}${p}${b64(salt).decode()}${b64(digest).decode()}"
