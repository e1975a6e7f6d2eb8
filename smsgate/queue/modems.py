"""Modems as the database knows them: stable identity, last seen state and counters."""

from __future__ import annotations

from typing import Any

from .db import Db
from .errors import NotFound

_HEALTH_FIELDS = {
    "device", "imei", "imsi", "iccid", "msisdn", "manufacturer", "model", "revision", "personality",
    "state", "state_detail", "signal_dbm", "signal_bars", "registration", "operator", "storage_used",
    "storage_total", "last_error", "last_error_at", "last_seen_at", "heartbeat_at",
}


class ModemRegistry:
    """Each configured modem's stable row: identity, last published state and lifetime counters."""

    def __init__(self, db: Db) -> None:
        self.db = db

    def upsert(self, name: str, **fields: Any) -> int:
        """The row for the configured modem `name`, created on first sight; its history stays with the name."""
        bad = set(fields) - _HEALTH_FIELDS
        if bad:
            raise ValueError(f"unknown modem fields: {sorted(bad)}")
        now = self.db.now()
        with self.db.transaction():
            row = self.db.one("SELECT id FROM modems WHERE name = ?", (name,))
            if row is None:
                cur = self.db.execute(
                    "INSERT INTO modems (name, created_at, updated_at) VALUES (?,?,?)", (name, now, now)
                )
                modem_id = int(cur.lastrowid or 0)
            else:
                modem_id = int(row["id"])
            if fields:
                self.update(modem_id, **fields)
        return modem_id

    def update(self, modem_id: int, **fields: Any) -> None:
        bad = set(fields) - _HEALTH_FIELDS
        if bad:
            raise ValueError(f"unknown modem fields: {sorted(bad)}")
        if not fields:
            return
        sets = ", ".join(f"{k} = ?" for k in fields)
        self.db.execute(
            f"UPDATE modems SET {sets}, updated_at = ? WHERE id = ?", (*fields.values(), self.db.now(), modem_id)
        )

    def get(self, modem_id: int) -> dict[str, Any]:
        row = self.db.one("SELECT * FROM modems WHERE id = ?", (modem_id,))
        if row is None:
            raise NotFound(f"no modem #{modem_id}")
        return row

    def by_name(self, name: str) -> dict[str, Any] | None:
        return self.db.one("SELECT * FROM modems WHERE name = ?", (name,))

    def all(self) -> list[dict[str, Any]]:
        return self.db.all("SELECT * FROM modems ORDER BY name")

    def count_sent(self, modem_id: int) -> None:
        self.db.execute("UPDATE modems SET sent_count = sent_count + 1 WHERE id = ?", (modem_id,))

    def count_failed(self, modem_id: int) -> None:
        self.db.execute("UPDATE modems SET failed_count = failed_count + 1 WHERE id = ?", (modem_id,))

    def count_received(self, modem_id: int) -> None:
        self.db.execute("UPDATE modems SET received_count = received_count + 1 WHERE id = ?", (modem_id,))

    def parts_sent_since(self, modem_id: int, since: str) -> int:
        """Parts this modem handed to the network since `since` (its daily cap is counted in parts)."""
        return int(self.db.scalar(
            "SELECT COUNT(*) FROM message_parts WHERE modem_id = ? AND submitted_at >= ?", (modem_id, since)))

    def recipients_since(self, modem_id: int, since: str) -> set[str]:
        """Distinct numbers this modem texted since `since` (carriers cap distinct recipients per month)."""
        return {
            r["recipient"]
            for r in self.db.all(
                "SELECT DISTINCT recipient FROM message_parts WHERE modem_id = ? AND submitted_at >= ?",
                (modem_id, since),
            )
        }

    def retire_absent(self, configured: list[str], *, silent_since: str) -> list[int]:
        """Mark `stopped` the modems that are not configured here and have not been heard from since
        `silent_since`; returns their ids.

        A modem taken out of the configuration keeps the state its last daemon wrote (`ready`, when that
        daemon was killed), and a half-sent message waits for the SIM that sent its first parts while that
        SIM looks in service: without this it would wait for ever. A modem another live daemon drives has
        a fresh heartbeat and is left alone; one already out of service keeps its state.
        """
        marks = ",".join("?" * len(configured)) or "NULL"
        rows = self.db.all(
            f"SELECT id FROM modems WHERE name NOT IN ({marks}) AND state NOT IN ('offline', 'locked', 'stopped')"
            " AND COALESCE(heartbeat_at, last_seen_at, updated_at) < ?", (*configured, silent_since))
        for r in rows:
            self.update(r["id"], state="stopped", state_detail="not in the configuration of the running daemon")
        return [r["id"] for r in rows]

