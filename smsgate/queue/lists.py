"""Static lists: named sets of contacts that campaigns and segments start from.

A list's name is lower-case and doubles as the consent scope of marketing sent to it, so "STOP
NEWSLETTER" and an opt-in "to newsletter" name the same thing the list does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from smsgate.numbers import InvalidNumber, normalize

from .audit import AuditLog
from .contacts import Contacts
from .db import Db
from .errors import NotFound, StoreError

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_KEYWORD = re.compile(r"^[A-Z0-9]{2,20}$")
# Scopes of the consent ledger that are not lists: every purpose, and the transactional one.
RESERVED = ("all", "transactional")


class ListError(StoreError):
    """A list name, keyword or number that cannot be used; `field` says which."""

    def __init__(self, message: str, field: str = "name") -> None:
        super().__init__(message)
        self.field = field


class ListExists(ListError):
    """A list with this name (or keyword) is already there."""


@dataclass(frozen=True)
class ContactList:
    id: int
    name: str
    keyword: str | None
    description: str | None
    created_at: str


def list_name(name: str) -> str:
    """The stored form of a list name; refused if a patient could not type it after STOP."""
    cleaned = name.strip().lower()
    if not _NAME.match(cleaned) or cleaned in RESERVED:
        raise ListError(
            f"{name!r} cannot be a list name: use 1-40 letters, digits, '-' or '_', starting with a letter "
            "or digit (and not 'all' or 'transactional', which are consent purposes of their own)"
        )
    return cleaned


def list_keyword(keyword: str) -> str:
    """The stored form of a list's keyword: the one word a patient sends after STOP to leave that list."""
    cleaned = keyword.strip().upper()
    if not _KEYWORD.match(cleaned):
        raise ListError(f"{keyword!r} cannot be a list keyword: use one word of 2-20 letters or digits, such as "
                        "NEWS (patients send STOP NEWS to leave the list)", "keyword")
    return cleaned


class Lists:
    """Lists and their members; membership is by contact, so a number changed on a contact stays listed."""

    def __init__(self, db: Db, *, audit: AuditLog, contacts: Contacts) -> None:
        self.db = db
        self.audit = audit
        self.contacts = contacts

    def create(self, name: str, *, actor: str, keyword: str | None = None,
               description: str | None = None) -> ContactList:
        name = list_name(name)
        with self.db.transaction():
            if self.get(name) is not None:
                raise ListExists(f"a list named {name!r} already exists")
            if keyword is not None:
                keyword = list_keyword(keyword)
                if self.db.one("SELECT 1 FROM lists WHERE keyword = ?", (keyword,)) is not None:
                    raise ListExists(f"the keyword {keyword!r} already belongs to another list", "keyword")
            cur = self.db.execute(
                "INSERT INTO lists (name, keyword, description, created_at) VALUES (?,?,?,?)",
                (name, keyword, description, self.db.now()),
            )
            list_id = int(cur.lastrowid or 0)
            self.audit.record(actor, "list.create", "list", list_id, {"name": name, "keyword": keyword})
        found = self.get(name)
        assert found is not None
        return found

    def ensure(self, name: str, *, actor: str) -> ContactList:
        """The list called `name`, created if new (an import naming a list the clinic has not made yet)."""
        with self.db.transaction():
            found = self.get(name)
            return found if found is not None else self.create(name, actor=actor)

    def get(self, name: str) -> ContactList | None:
        row = self.db.one("SELECT * FROM lists WHERE name = ?", (name.strip().lower(),))
        return _record(row) if row is not None else None

    def require(self, name: str) -> ContactList:
        found = self.get(name)
        if found is None:
            raise NotFound(f"no list named {name!r}; `smsgate lists list` shows the lists there are")
        return found

    def all(self) -> list[ContactList]:
        return [_record(r) for r in self.db.all("SELECT * FROM lists ORDER BY name")]

    def add_members(self, name: str, contact_ids: Iterable[int], *, actor: str, source: str) -> int:
        """How many of `contact_ids` were newly added; those already on the list are left as they were."""
        found = self.require(name)
        now = self.db.now()
        added = 0
        with self.db.transaction():
            for contact_id in contact_ids:
                cur = self.db.execute(
                    "INSERT INTO list_members (list_id, contact_id, added_at, source) VALUES (?,?,?,?)"
                    " ON CONFLICT DO NOTHING",
                    (found.id, contact_id, now, source),
                )
                added += cur.rowcount
            if added:
                self.audit.record(actor, "list.add", "list", found.id, {"added": added, "source": source})
        return added

    def remove_members(self, name: str, contact_ids: Iterable[int], *, actor: str) -> int:
        found = self.require(name)
        removed = 0
        with self.db.transaction():
            for contact_id in contact_ids:
                cur = self.db.execute(
                    "DELETE FROM list_members WHERE list_id = ? AND contact_id = ?", (found.id, contact_id)
                )
                removed += cur.rowcount
            if removed:
                self.audit.record(actor, "list.remove", "list", found.id, {"removed": removed})
        return removed

    def add_numbers(self, name: str, numbers: Iterable[str], *, actor: str, source: str) -> tuple[int, int]:
        """(added, already on the list) for phone numbers as staff type them; a number that is not one
        is refused by name before anything is added, so a pasted column is added whole or not at all."""
        found = self.require(name)
        with self.db.transaction():
            ids = [self.contacts.ensure(n) for n in self._normalized(numbers)]
            added = self.add_members(found.name, ids, actor=actor, source=source)
        return added, len(set(ids)) - added

    def remove_numbers(self, name: str, numbers: Iterable[str], *, actor: str) -> tuple[int, list[str]]:
        """(removed, numbers that were not on the list)."""
        found = self.require(name)
        removed, missing = 0, []
        with self.db.transaction():
            for number in self._normalized(numbers):
                contact = self.contacts.get(number)
                gone = self.remove_members(found.name, [contact["id"]], actor=actor) if contact else 0
                removed += gone
                if not gone:
                    missing.append(number)
        return removed, missing

    def _normalized(self, numbers: Iterable[str]) -> list[str]:
        out: list[str] = []
        for raw in numbers:
            try:
                out.append(normalize(raw, default_region=self.db.default_region))
            except InvalidNumber as exc:
                raise ListError(f"{exc} Nothing was changed.", "numbers") from None
        if not out:
            raise ListError("give at least one phone number, e.g. +12025550123", "numbers")
        return out

    def members(self, name: str, *, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        found = self.require(name)
        return self.db.all(
            "SELECT k.*, m.added_at, m.source FROM list_members m JOIN contacts k ON k.id = m.contact_id"
            " WHERE m.list_id = ? ORDER BY k.number LIMIT ? OFFSET ?",
            (found.id, limit, offset),
        )

    def count(self, name: str) -> int:
        found = self.require(name)
        return int(self.db.scalar("SELECT COUNT(*) FROM list_members WHERE list_id = ?", (found.id,)) or 0)

    def counts(self) -> dict[str, int]:
        """Members per list name, every list in one query (lists with no members count 0)."""
        rows = self.db.all("SELECT l.name, COUNT(m.contact_id) AS n FROM lists l"
                           " LEFT JOIN list_members m ON m.list_id = l.id GROUP BY l.name")
        return {r["name"]: int(r["n"]) for r in rows}

    def stop_scopes(self) -> dict[str, str]:
        """keyword -> list name, for every list with a keyword: "STOP <KEYWORD>" leaves that list only."""
        rows = self.db.all("SELECT name, keyword FROM lists WHERE keyword IS NOT NULL")
        return {r["keyword"]: r["name"] for r in rows}

    def lists_of(self, contact_id: int) -> list[str]:
        rows = self.db.all(
            "SELECT l.name FROM list_members m JOIN lists l ON l.id = m.list_id WHERE m.contact_id = ?"
            " ORDER BY l.name", (contact_id,))
        return [r["name"] for r in rows]


def _record(row: dict[str, Any]) -> ContactList:
    return ContactList(id=row["id"], name=row["name"], keyword=row["keyword"],
                       description=row["description"], created_at=row["created_at"])
