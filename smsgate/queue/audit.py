"""The append-only audit log (state changes and admin actions) and operator alerts."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .filters import where

if TYPE_CHECKING:
    from .store import Store


class AuditMixin:
    def audit(self: Store, actor: str, action: str, subject_type: str | None = None,
              subject_id: int | None = None, detail: dict[str, Any] | None = None) -> None:
        """Append one entry. Runs inside the caller's transaction, so the entry and the change commit together."""
        self._exec(
            "INSERT INTO audit_log (at, actor, action, subject_type, subject_id, detail) VALUES (?,?,?,?,?,?)",
            (self._now(), actor, action, subject_type, subject_id,
             json.dumps(detail, ensure_ascii=False, default=str) if detail else None),
        )

    def audit_entries(self: Store, *, limit: int = 100, action_prefix: str | None = None,
                      subject_type: str | None = None, subject_id: int | None = None) -> list[dict[str, Any]]:
        clause, params = where(("action LIKE ?", action_prefix and action_prefix + "%"),
                               ("subject_type = ?", subject_type), ("subject_id = ?", subject_id))
        rows = self._all(f"SELECT * FROM audit_log{clause} ORDER BY id DESC LIMIT ?", (*params, limit))
        for r in rows:
            r["detail"] = json.loads(r["detail"]) if r["detail"] else {}
        return rows

    def raise_alert(self: Store, kind: str, message: str, *, level: str = "error",
                    modem_id: int | None = None) -> int:
        """Open an alert unless the same one is already open (a flapping modem raises one, not hundreds)."""
        with self.transaction():
            row = self._one("SELECT id FROM alerts WHERE kind = ? AND modem_id IS ? AND resolved_at IS NULL",
                            (kind, modem_id))
            if row:
                self._exec("UPDATE alerts SET message = ?, at = ? WHERE id = ?", (message, self._now(), row["id"]))
                return int(row["id"])
            cur = self._exec("INSERT INTO alerts (at, level, kind, modem_id, message) VALUES (?,?,?,?,?)",
                             (self._now(), level, kind, modem_id, message))
            return int(cur.lastrowid or 0)

    def resolve_alerts(self: Store, kind: str, *, modem_id: int | None = None) -> int:
        with self.transaction():
            cur = self._exec("UPDATE alerts SET resolved_at = ? WHERE kind = ? AND modem_id IS ?"
                             " AND resolved_at IS NULL", (self._now(), kind, modem_id))
            return cur.rowcount

    def open_alerts(self: Store) -> list[dict[str, Any]]:
        return self._all("SELECT * FROM alerts WHERE resolved_at IS NULL ORDER BY id DESC")
