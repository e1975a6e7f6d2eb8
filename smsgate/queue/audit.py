"""The append-only audit log (state changes and admin actions) and the operator alerts beside it."""

from __future__ import annotations

import json
from typing import Any

from .db import Db
from .filters import where


class AuditLog:
    """Who did what, when. Entries are written inside the caller's transaction, so an entry and the change
    it records commit together; triggers refuse UPDATE and DELETE on the table."""

    def __init__(self, db: Db) -> None:
        self.db = db

    def record(self, actor: str, action: str, subject_type: str | None = None,
               subject_id: int | None = None, detail: dict[str, Any] | None = None) -> None:
        self.db.execute(
            "INSERT INTO audit_log (at, actor, action, subject_type, subject_id, detail) VALUES (?,?,?,?,?,?)",
            (self.db.now(), actor, action, subject_type, subject_id,
             json.dumps(detail, ensure_ascii=False, default=str) if detail else None),
        )

    def entries(self, *, limit: int = 100, action_prefix: str | None = None,
                subject_type: str | None = None, subject_id: int | None = None) -> list[dict[str, Any]]:
        clause, params = where(("action LIKE ?", action_prefix and action_prefix + "%"),
                               ("subject_type = ?", subject_type), ("subject_id = ?", subject_id))
        rows = self.db.all(f"SELECT * FROM audit_log{clause} ORDER BY id DESC LIMIT ?", (*params, limit))
        for r in rows:
            r["detail"] = json.loads(r["detail"]) if r["detail"] else {}
        return rows

    def erase_details(self, subject_type: str, subject_id: int, *, keep: tuple[str, ...] = ("number",)) -> int:
        """Erasure: every entry about one subject keeps its time, actor, action and subject, and of its detail
        only the `keep` keys, counts, and for a nested record such as `changes` the names in it without the
        values.
        The trigger lets an UPDATE through only when the new detail is marked `erased`. Returns the entries
        changed."""
        rows = self.db.all("SELECT id, detail FROM audit_log WHERE subject_type = ? AND subject_id = ?"
                           " AND detail IS NOT NULL", (subject_type, subject_id))
        changed = 0
        for row in rows:
            old = json.loads(row["detail"])
            if not isinstance(old, dict) or old.get("erased") is True:
                continue
            new: dict[str, Any] = {"erased": True}
            for key, value in old.items():
                if key in keep or (isinstance(value, int | float) and not isinstance(value, bool)):
                    new[key] = value
                elif isinstance(value, dict):
                    new[key] = sorted(value)
            self.db.execute("UPDATE audit_log SET detail = ? WHERE id = ?",
                            (json.dumps(new, ensure_ascii=False), row["id"]))
            changed += 1
        return changed

    def count_reason(self, subject_type: str, subject_id: int, action: str, reason: str) -> int:
        """How often `action` was recorded for one subject with this `detail.reason` (limits that must
        survive a restart are counted here, not in a process's memory)."""
        return int(self.db.scalar(
            "SELECT COUNT(*) FROM audit_log WHERE subject_type = ? AND subject_id = ? AND action = ?"
            " AND json_extract(detail, '$.reason') = ?", (subject_type, subject_id, action, reason)))


class Alerts:
    """Problems an operator must see (a modem offline, a SIM locked, storage full), open until resolved."""

    def __init__(self, db: Db) -> None:
        self.db = db

    def raise_alert(self, kind: str, message: str, *, level: str = "error", modem_id: int | None = None) -> int:
        """Open an alert unless the same one is already open (a flapping modem raises one, not hundreds)."""
        with self.db.transaction():
            row = self.db.one("SELECT id FROM alerts WHERE kind = ? AND modem_id IS ? AND resolved_at IS NULL",
                              (kind, modem_id))
            if row:
                self.db.execute("UPDATE alerts SET message = ?, at = ? WHERE id = ?",
                                (message, self.db.now(), row["id"]))
                return int(row["id"])
            cur = self.db.execute("INSERT INTO alerts (at, level, kind, modem_id, message) VALUES (?,?,?,?,?)",
                                  (self.db.now(), level, kind, modem_id, message))
            return int(cur.lastrowid or 0)

    def resolve(self, kind: str, *, modem_id: int | None = None) -> int:
        with self.db.transaction():
            cur = self.db.execute("UPDATE alerts SET resolved_at = ? WHERE kind = ? AND modem_id IS ?"
                                  " AND resolved_at IS NULL", (self.db.now(), kind, modem_id))
            return cur.rowcount

    def resolve_all(self, modem_id: int) -> int:
        """Close every open alert of one modem (it is no longer part of the running system)."""
        with self.db.transaction():
            cur = self.db.execute("UPDATE alerts SET resolved_at = ? WHERE modem_id = ? AND resolved_at IS NULL",
                                  (self.db.now(), modem_id))
            return cur.rowcount

    def is_open(self, kind: str, *, modem_id: int | None = None) -> bool:
        """Whether an alert of `kind` is open, whichever process raised it."""
        return self.db.one("SELECT 1 FROM alerts WHERE kind = ? AND modem_id IS ? AND resolved_at IS NULL",
                           (kind, modem_id)) is not None

    def open_alerts(self) -> list[dict[str, Any]]:
        return self.db.all("SELECT * FROM alerts WHERE resolved_at IS NULL ORDER BY id DESC")
