"""Modems as the database knows them: stable identity, last seen state and counters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import NotFound

if TYPE_CHECKING:
    from .store import Store

_HEALTH_FIELDS = {
    "device", "imei", "imsi", "iccid", "msisdn", "manufacturer", "model", "revision", "personality",
    "state", "state_detail", "signal_dbm", "signal_bars", "registration", "operator", "storage_used",
    "storage_total", "last_error", "last_error_at", "last_seen_at", "heartbeat_at",
}


class ModemsMixin:
    def upsert_modem(self: Store, name: str, **fields: Any) -> int:
        """The row for the configured modem `name`, created on first sight; its history stays with the name."""
        bad = set(fields) - _HEALTH_FIELDS
        if bad:
            raise ValueError(f"unknown modem fields: {sorted(bad)}")
        now = self._now()
        with self.transaction():
            row = self._one("SELECT id FROM modems WHERE name = ?", (name,))
            if row is None:
                cur = self._exec("INSERT INTO modems (name, created_at, updated_at) VALUES (?,?,?)", (name, now, now))
                modem_id = int(cur.lastrowid or 0)
            else:
                modem_id = int(row["id"])
            if fields:
                self.update_modem(modem_id, **fields)
        return modem_id

    def update_modem(self: Store, modem_id: int, **fields: Any) -> None:
        bad = set(fields) - _HEALTH_FIELDS
        if bad:
            raise ValueError(f"unknown modem fields: {sorted(bad)}")
        if not fields:
            return
        sets = ", ".join(f"{k} = ?" for k in fields)
        self._exec(f"UPDATE modems SET {sets}, updated_at = ? WHERE id = ?",
                   (*fields.values(), self._now(), modem_id))

    def get_modem(self: Store, modem_id: int) -> dict[str, Any]:
        row = self._one("SELECT * FROM modems WHERE id = ?", (modem_id,))
        if row is None:
            raise NotFound(f"no modem #{modem_id}")
        return row

    def modem_by_name(self: Store, name: str) -> dict[str, Any] | None:
        return self._one("SELECT * FROM modems WHERE name = ?", (name,))

    def list_modems(self: Store) -> list[dict[str, Any]]:
        return self._all("SELECT * FROM modems ORDER BY name")

    def count_received(self: Store, modem_id: int) -> None:
        self._exec("UPDATE modems SET received_count = received_count + 1 WHERE id = ?", (modem_id,))

    def parts_sent_since(self: Store, modem_id: int, since: str) -> int:
        """Parts this modem handed to the network since `since` (its daily cap is counted in parts)."""
        row = self._one("SELECT COUNT(*) AS n FROM message_parts WHERE modem_id = ? AND submitted_at >= ?",
                        (modem_id, since))
        return int(row["n"]) if row else 0

    def recipients_since(self: Store, modem_id: int, since: str) -> set[str]:
        """Distinct numbers this modem texted since `since` (carriers cap distinct recipients per month)."""
        return {r["recipient"] for r in self._all(
            "SELECT DISTINCT recipient FROM message_parts WHERE modem_id = ? AND submitted_at >= ?",
            (modem_id, since))}

