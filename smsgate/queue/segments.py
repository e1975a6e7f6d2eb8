"""Saved segments: a named filter over contacts (tags, fields, language, zone, region, lists, consent,
recent replies and answers), evaluated each time it is used, so it always means who matches now."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .audit import AuditLog
from .db import Db
from .errors import NotFound, StoreError
from .lists import Lists
from .segment_filter import SegmentError, SegmentFilter, parse

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
PREVIEW_COLUMNS = ("id", "number", "name", "first_name", "last_name", "language", "timezone", "tags",
                   "last_inbound_at")


class SegmentExists(StoreError):
    """A segment with this name is already saved."""


@dataclass(frozen=True)
class Segment:
    id: int
    name: str
    filter: str
    description: str | None
    created_by: str
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class SegmentPreview:
    """How many contacts match now, and the first of them (by number)."""

    segment: str
    filter: str
    count: int
    rows: list[dict[str, Any]]


def segment_name(name: str) -> str:
    cleaned = name.strip().lower()
    if not _NAME.match(cleaned):
        raise SegmentError(f"{name!r} cannot be a segment name: use 1-40 letters, digits, '-' or '_', starting "
                           "with a letter or digit", field="name")
    return cleaned


class Segments:
    """Saved filters and what they select; the SQL comes from `segment_filter`, never from the user."""

    def __init__(self, db: Db, *, audit: AuditLog, lists: Lists) -> None:
        self.db = db
        self.audit = audit
        self.lists = lists

    def check(self, where: str) -> SegmentFilter:
        """The parsed filter, refused if it names a list that does not exist (a typo would select nobody)."""
        parsed = parse(where)
        for term in parsed.scopes():
            if term.value != "transactional" and self.lists.get(term.value) is None:
                raise SegmentError(f"there is no list named {term.value!r} (`smsgate lists list` shows the "
                                   "lists)", term.column)
        return parsed

    def create(self, name: str, where: str, *, actor: str, description: str | None = None,
               replace: bool = False) -> Segment:
        name = segment_name(name)
        parsed = self.check(where)
        now = self.db.now()
        with self.db.transaction():
            existing = self.get(name)
            if existing is not None and not replace:
                raise SegmentExists(f"a segment named {name!r} already exists; use --replace to change its "
                                    "filter")
            if existing is None:
                cur = self.db.execute(
                    "INSERT INTO segments (name, filter, description, created_by, created_at, updated_at)"
                    " VALUES (?,?,?,?,?,?)", (name, parsed.text, description, actor, now, now))
                segment_id = int(cur.lastrowid or 0)
            else:
                segment_id = existing.id
                self.db.execute("UPDATE segments SET filter = ?, description = ?, updated_at = ? WHERE id = ?",
                                (parsed.text, description, now, segment_id))
            self.audit.record(actor, "segment.replace" if existing else "segment.create", "segment", segment_id,
                              {"name": name, "filter": parsed.text})
        return self.require(name)

    def get(self, name: str) -> Segment | None:
        row = self.db.one("SELECT * FROM segments WHERE name = ?", (name.strip().lower(),))
        return Segment(**row) if row is not None else None

    def require(self, name: str) -> Segment:
        found = self.get(name)
        if found is None:
            raise NotFound(f"no segment named {name!r}; `smsgate segments list` shows the segments there are")
        return found

    def all(self) -> list[Segment]:
        return [Segment(**r) for r in self.db.all("SELECT * FROM segments ORDER BY name")]

    def delete(self, name: str, *, actor: str) -> None:
        found = self.require(name)
        with self.db.transaction():
            self.db.execute("DELETE FROM segments WHERE id = ?", (found.id,))
            self.audit.record(actor, "segment.delete", "segment", found.id, {"name": found.name,
                                                                              "filter": found.filter})

    def preview(self, name: str, *, limit: int = 10) -> SegmentPreview:
        """The count and first `limit` contacts of a saved segment, as of now."""
        found = self.require(name)
        parsed = self.check(found.filter)
        return SegmentPreview(found.name, found.filter, self.count(parsed),
                              self.contacts(parsed, limit=limit))

    def count(self, parsed: SegmentFilter) -> int:
        where, params = self._where(parsed)
        return int(self.db.scalar(f"SELECT COUNT(*) FROM contacts k WHERE {where}", params))

    def contacts(self, parsed: SegmentFilter, *, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        where, params = self._where(parsed)
        return self.db.all(f"SELECT {', '.join('k.' + c for c in PREVIEW_COLUMNS)} FROM contacts k WHERE {where}"
                           " ORDER BY k.number LIMIT ? OFFSET ?", (*params, limit, offset))

    def numbers(self, name: str) -> list[str]:
        """Every number the saved segment selects now (what a campaign to it would be sent to)."""
        parsed = self.check(self.require(name).filter)
        where, params = self._where(parsed)
        return [r["number"] for r in self.db.all(f"SELECT k.number FROM contacts k WHERE {where}"
                                                 " ORDER BY k.number", params)]

    def _where(self, parsed: SegmentFilter) -> tuple[str, list[Any]]:
        # Erased contacts keep their row for the ledger's sake, but no segment selects them.
        condition, params = parsed.to_sql(self.db, self.db.clock())
        return f"k.erased_at IS NULL AND {condition}", params
