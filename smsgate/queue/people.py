"""Contacts (one row per E.164 number) and conversations (one thread per contact and SIM)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from smsgate.numbers import InvalidNumber, normalize

from .errors import NotFound
from .filters import where

if TYPE_CHECKING:
    from .store import Store


class PeopleMixin:
    def canonical_sender(self: Store, sender: str) -> str:
        """E.164 where the sender is a phone number; alphanumeric ids and short codes are kept as given."""
        try:
            return normalize(sender, default_region=self.default_region)
        except InvalidNumber:
            return sender.strip()

    def ensure_contact(self: Store, number: str) -> int:
        row = self._one("SELECT id FROM contacts WHERE number = ?", (number,))
        if row is not None:
            return int(row["id"])
        now = self._now()
        cur = self._exec("INSERT INTO contacts (number, created_at, updated_at) VALUES (?,?,?)", (number, now, now))
        return int(cur.lastrowid or 0)

    def get_contact(self: Store, number: str) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM contacts WHERE number = ?", (number,))
        if row is not None:
            row["tags"] = json.loads(row["tags"])
            row["fields"] = json.loads(row["fields"])
        return row

    def update_contact(self: Store, number: str, *, name: str | None = None, first_name: str | None = None,
                       timezone: str | None = None, tags: list[str] | None = None,
                       fields: dict[str, str] | None = None, actor: str = "cli") -> int:
        with self.transaction():
            contact_id = self.ensure_contact(number)
            changes: dict[str, Any] = {}
            if name is not None:
                changes["name"] = name
            if first_name is not None:
                changes["first_name"] = first_name
            if timezone is not None:
                changes["timezone"] = timezone
            if tags is not None:
                changes["tags"] = json.dumps(sorted(set(tags)))
            if fields is not None:
                changes["fields"] = json.dumps(fields, ensure_ascii=False)
            if changes:
                sets = ", ".join(f"{k} = ?" for k in changes)
                self._exec(f"UPDATE contacts SET {sets}, updated_at = ? WHERE id = ?",
                           (*changes.values(), self._now(), contact_id))
                self.audit(actor, "contact.update", "contact", contact_id, {"number": number, **changes})
            return contact_id

    def add_contact_tag(self: Store, number: str, tag: str) -> None:
        contact = self.get_contact(number)
        tags = set(contact["tags"]) if contact else set()
        if tag not in tags:
            self.update_contact(number, tags=[*tags, tag], actor="rules")

    def conversation_for(self: Store, contact_id: int, modem_id: int) -> int:
        row = self._one("SELECT id FROM conversations WHERE contact_id = ? AND modem_id = ?", (contact_id, modem_id))
        if row is not None:
            return int(row["id"])
        cur = self._exec("INSERT INTO conversations (contact_id, modem_id, created_at) VALUES (?,?,?)",
                         (contact_id, modem_id, self._now()))
        return int(cur.lastrowid or 0)

    def get_conversation(self: Store, conversation_id: int) -> dict[str, Any]:
        row = self._one(
            "SELECT c.*, k.number, k.name, k.first_name, m.name AS modem_name, m.msisdn AS modem_msisdn"
            " FROM conversations c JOIN contacts k ON k.id = c.contact_id"
            " LEFT JOIN modems m ON m.id = c.modem_id WHERE c.id = ?", (conversation_id,))
        if row is None:
            raise NotFound(f"no conversation #{conversation_id}")
        return row

    def list_conversations(self: Store, *, status: str | None = None, team: str | None = None,
                           unread_only: bool = False, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        clause, params = where(("c.status = ?", status), ("c.team = ?", team), ("c.unread > 0", unread_only))
        sql = (
            "SELECT c.*, k.number, k.name, m.name AS modem_name FROM conversations c"
            " JOIN contacts k ON k.id = c.contact_id LEFT JOIN modems m ON m.id = c.modem_id"
            + clause
            + " ORDER BY c.last_message_at DESC NULLS LAST, c.id DESC LIMIT ? OFFSET ?"
        )
        return self._all(sql, (*params, limit, offset))

    def conversation_history(self: Store, conversation_id: int) -> list[dict[str, Any]]:
        """Both directions of one thread, oldest first."""
        conv = self.get_conversation(conversation_id)
        return self._all(
            "SELECT 'in' AS direction, id, body, received_at AS at, NULL AS state, keyword, NULL AS outcome"
            " FROM inbound WHERE conversation_id = :c"
            " UNION ALL SELECT 'out', id, body, created_at, state, NULL, outcome FROM messages"
            " WHERE to_number = :n AND (conversation_id = :c OR (conversation_id IS NULL))"
            " ORDER BY at, direction",
            {"c": conversation_id, "n": conv["number"]},
        )

    def update_conversation(self: Store, conversation_id: int, *, actor: str, **fields: Any) -> None:
        allowed = {"status", "team", "assigned_to", "unread", "likely_opt_out", "after_hours_replied_at", "menu"}
        bad = set(fields) - allowed
        if bad:
            raise ValueError(f"unknown conversation fields: {sorted(bad)}")
        if not fields:
            return
        with self.transaction():
            sets = ", ".join(f"{k} = ?" for k in fields)
            self._exec(f"UPDATE conversations SET {sets} WHERE id = ?", (*fields.values(), conversation_id))
            self.audit(actor, "conversation.update", "conversation", conversation_id, fields)
