"""Store operations for the durable outbox of webhook deliveries.

An event is committed here first (in the same transaction as what caused it, when the caller holds
one) and POSTed later by the deliverer, so a slow or dead receiver never blocks the modem loop and a
restart loses nothing. A delivery being attempted is leased by pushing its `next_attempt_at` forward,
so two deliverers cannot post the same row at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .clock import ts
from .db import Db
from .errors import NotFound


@dataclass(frozen=True)
class WebhookDelivery:
    id: int
    url: str
    event: str
    payload: str  # the exact JSON text that is signed and sent
    state: str  # pending | delivered | failed
    attempts: int
    next_attempt_at: str
    last_error: str | None
    created_at: str
    delivered_at: str | None


def _delivery(row: dict[str, Any]) -> WebhookDelivery:
    return WebhookDelivery(row["id"], row["url"], row["event"], row["payload"], row["state"], row["attempts"],
                           row["next_attempt_at"], row["last_error"], row["created_at"], row["delivered_at"])


class WebhookOutbox:
    """The durable outbox of webhook deliveries: the one writer of its rows, and the feed it is filled from."""

    def __init__(self, db: Db) -> None:
        self.db = db

    def add(self, url: str, event: str, payload: dict[str, Any]) -> int:
        now = self.db.now()
        text = json.dumps(payload, ensure_ascii=False, sort_keys=True, default=str)
        cur = self.db.execute("INSERT INTO webhook_deliveries (url, event, payload, next_attempt_at, created_at)"
                              " VALUES (?,?,?,?,?)", (url, event, text, now, now))
        return int(cur.lastrowid or 0)

    def erase_texts(self, sender: str, marker: str) -> int:
        """Erasure: webhook bodies that carry a text from `sender` (inbound and keyword events) keep their
        envelope but not the text. Returns how many were changed."""
        rows = self.db.all("SELECT id, payload FROM webhook_deliveries WHERE payload LIKE ?",
                           ("%" + json.dumps(sender) + "%",))
        changed = 0
        for row in rows:
            payload = json.loads(row["payload"])
            data = payload.get("data")
            if isinstance(data, dict) and data.get("from") == sender and "text" in data:
                data["text"] = marker
                self.db.execute("UPDATE webhook_deliveries SET payload = ? WHERE id = ?",
                                (json.dumps(payload, ensure_ascii=False, sort_keys=True, default=str), row["id"]))
                changed += 1
        return changed

    def claim(self, *, limit: int = 20, lease_seconds: float = 60.0
              ) -> list[WebhookDelivery]:
        """Due pending deliveries, leased for `lease_seconds` (their next attempt is moved past the lease)."""
        now = self.db.clock()
        until = ts(now + timedelta(seconds=lease_seconds))
        with self.db.transaction():
            rows = self.db.all("SELECT * FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= ?"
                               " ORDER BY next_attempt_at, id LIMIT ?", (ts(now), limit))
            self.db.executemany("UPDATE webhook_deliveries SET next_attempt_at = ? WHERE id = ?",
                                ((until, r["id"]) for r in rows))
        return [_delivery(r) for r in rows]

    def delivered(self, delivery_id: int) -> None:
        self.db.execute("UPDATE webhook_deliveries SET state = 'delivered', attempts = attempts + 1, delivered_at = ?,"
                        " last_error = NULL WHERE id = ?", (self.db.now(), delivery_id))

    def attempt_failed(self, delivery_id: int, error: str, *, retry_at: datetime | None) -> None:
        """Note a failed attempt; retry at `retry_at`, or give up (state `failed`) when it is None."""
        if retry_at is None:
            self.db.execute("UPDATE webhook_deliveries SET state = 'failed', attempts = attempts + 1, last_error = ?"
                            " WHERE id = ?", (error, delivery_id))
        else:
            self.db.execute("UPDATE webhook_deliveries SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?"
                            " WHERE id = ?", (error, ts(retry_at), delivery_id))

    def get(self, delivery_id: int) -> WebhookDelivery:
        row = self.db.one("SELECT * FROM webhook_deliveries WHERE id = ?", (delivery_id,))
        if row is None:
            raise NotFound(f"no webhook delivery #{delivery_id}")
        return _delivery(row)

    def counts(self) -> dict[str, int]:
        return {r["state"]: r["n"] for r in self.db.all(
            "SELECT state, COUNT(*) AS n FROM webhook_deliveries GROUP BY state")}

    # -- the event feed: state changes (audit log) and received messages, read once each via a cursor --------
    def events_after(self, audit_id: int, inbound_id: int, *, limit: int = 500
                     ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Message state/outcome audit entries and inbound rows newer than the given ids, oldest first."""
        audit = self.db.all(
            "SELECT id, at, actor, action, subject_id, detail FROM audit_log WHERE id > ? AND action LIKE 'message.%'"
            " ORDER BY id LIMIT ?", (audit_id, limit))
        inbound = self.db.all(
            "SELECT i.id, i.sender, i.body, i.received_at, i.sent_at, i.keyword, i.action, i.decode_error,"
            " i.conversation_id, i.in_reply_to, m.name AS modem FROM inbound i LEFT JOIN modems m ON m.id = i.modem_id"
            " WHERE i.id > ? ORDER BY i.id LIMIT ?", (inbound_id, limit))
        return audit, inbound

    def event_heads(self) -> tuple[int, int]:
        """The newest audit and inbound ids (where a new feed starts: webhooks are not sent for the past)."""
        a = self.db.one("SELECT COALESCE(MAX(id), 0) AS n FROM audit_log")
        i = self.db.one("SELECT COALESCE(MAX(id), 0) AS n FROM inbound")
        return int(a["n"] if a else 0), int(i["n"] if i else 0)

