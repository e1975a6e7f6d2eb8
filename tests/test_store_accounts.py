"""Passwords: werkzeug.security hashes, with hashes from before it still accepted and upgraded at login."""

from __future__ import annotations

import base64
import hashlib
import secrets
from pathlib import Path

import pytest

from smsgate.queue import Store
from smsgate.queue.accounts import verify_password


def _legacy_hash(password: str) -> str:
    """A hash as smsgate wrote them before werkzeug.security: `scrypt$N$r$p$salt$digest`."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return f"scrypt${2**14}$8$1${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def _stored_hash(store: Store, username: str) -> str:
    return str(store.query("SELECT password_hash FROM users WHERE username = ?", (username,))[0]["password_hash"])


def test_new_passwords_are_stored_as_werkzeug_hashes(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        store.accounts.add_user("maria", "correct horse battery", "staff", actor="test")
        stored = _stored_hash(store, "maria")
        assert stored.startswith("scrypt:") and "correct horse" not in stored
        assert store.accounts.check_password("maria", "correct horse battery") is not None
        assert store.accounts.check_password("maria", "wrong horse battery") is None


def test_a_hash_from_before_werkzeug_still_logs_in_and_is_upgraded_at_that_login(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        store.accounts.add_user("sam", "placeholder-password", "admin", actor="test")
        old = _legacy_hash("the old password 1")
        store.execute("UPDATE users SET password_hash = ? WHERE username = 'sam'", (old,))

        assert store.accounts.check_password("sam", "not the password") is None
        assert _stored_hash(store, "sam") == old, "a failed login must not touch the hash"

        user = store.accounts.check_password("sam", "the old password 1")
        assert user is not None and user.username == "sam"
        upgraded = _stored_hash(store, "sam")
        assert upgraded != old and upgraded.startswith("scrypt:")
        assert store.accounts.check_password("sam", "the old password 1") is not None


def test_a_damaged_hash_is_a_wrong_password_not_a_crash() -> None:
    for stored in ("", "scrypt$", "scrypt$x$y$z$%%%$!!!", "pbkdf2:sha256:1$salt", "plain text"):
        assert verify_password("anything at all", stored) is False


def test_a_login_costs_the_same_for_an_unknown_name_an_old_hash_and_a_new_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Timing must not tell which user names exist, while old and new hashes (of different scrypt
    costs) live side by side: every failed check runs the same scrypt work. Measured by the scrypt
    calls each check makes (their cost parameters), not by a clock."""
    real_scrypt = hashlib.scrypt
    calls: list[int] = []

    def counting_scrypt(password: bytes, **kw: int) -> bytes:
        calls.append(kw["n"])
        return real_scrypt(password, **kw)  # type: ignore[arg-type]  # the real function, counted

    with Store.open(tmp_path / "s.db") as store:
        store.accounts.add_user("new", "a new password 1", "staff", actor="test")
        store.accounts.add_user("old", "placeholder-password", "staff", actor="test")
        store.execute("UPDATE users SET password_hash = ? WHERE username = 'old'", (_legacy_hash("old pw 12345"),))
        store.accounts.check_password("nobody", "x" * 12)  # warm the cached dummy hashes
        monkeypatch.setattr(hashlib, "scrypt", counting_scrypt)
        costs = {}
        for name in ("nobody", "old", "new"):
            calls.clear()
            assert store.accounts.check_password(name, "not the password") is None
            costs[name] = sorted(calls)
    assert costs["nobody"] == costs["old"] == costs["new"] and len(costs["nobody"]) == 2
