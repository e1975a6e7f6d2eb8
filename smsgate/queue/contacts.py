"""Contacts (one row per E.164 number) and conversations (one thread per contact and SIM)."""

from __future__ import annotations

import json
from typing import Any

from smsgate.numbers import InvalidNumber, normalize

from .audit import AuditLog
from .db import Db
from .errors import NotFound
from .filters import where


class Contacts:
    """The people the clinic texts, one row per number; every message both ways points at one."""

    def __init__(self, db: Db, *, audit: AuditLog) -> None:
        self.db = db
        self.audit = audit

    def canonical(self, sender: str) -> str:
        """E.164 where the sender is a phone number; alphanumeric ids and short codes are kept as given."""
        try:
            return normalize(sender, default_region=self.db.default_region)
        except InvalidNumber:
            return sender.strip()

    def ensure(self, number: str) -> int:
        row = self.db.one("SELECT id FROM contacts WHERE number = ?", (number,))
        if row is not None:
            return int(row["id"])
        now = self.db.now()
        cur = self.db.execute(
            "INSERT INTO contacts (number, created_at, updated_at) VALUES (?,?,?)", (number, now, now)
        )
        return int(cur.lastrowid or 0)

    def get(self, number: str) -> dict[str, Any] | None:
        row = self.db.one("SELECT * FROM contacts WHERE number = ?", (number,))
        if row is not None:
            row["tags"] = json.loads(row["tags"])
            row["fields"] = json.loads(row["fields"])
        return row

    def update(
        self,
        number: str,
        *,
        name: str | None = None,
        first_name: str | None = None,
        timezone: str | None = None,
        tags: list[str] | None = None,
        fields: dict[str, str] | None = None,
        actor: str = "cli",
    ) -> int:
        with self.db.transaction():
            contact_id = self.ensure(number)
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
                self.db.execute(
                    f"UPDATE contacts SET {sets}, updated_at = ? WHERE id = ?",
                    (*changes.values(), self.db.now(), contact_id),
                )
                self.audit.record(actor, "contact.update", "contact", contact_id, {"number": number, **changes})
            return contact_id

    def add_tag(self, number: str, tag: str) -> None:
        contact = self.get(number)
        tags = set(contact["tags"]) if contact else set()
        if tag not in tags:
            self.update(number, tags=[*tags, tag], actor="rules")

    def has_been_texted(self, number: str) -> bool:
        """True once anything has been queued for, sent to or received from `number` (the first-message
        footer depends on it)."""
        row = self.db.one(
            "SELECT EXISTS (SELECT 1 FROM messages WHERE to_number = ? AND state != 'cancelled')"
            " OR EXISTS (SELECT 1 FROM inbound WHERE sender = ?)"
            " OR EXISTS (SELECT 1 FROM contacts WHERE number = ? AND first_texted_at IS NOT NULL) AS t",
            (number, number, number),
        )
        return bool(row and row["t"])

    def last_modem_id(self, contact_id: int) -> int | None:
        """The SIM this contact last texted in on: replies and reminders go out through it (sticky sender)."""
        row = self.db.one("SELECT last_modem_id FROM contacts WHERE id = ?", (contact_id,))
        return row["last_modem_id"] if row else None

    def mark_texted(self, number: str, at: str) -> int:
        """The contact's id, created if new, with `first_texted_at` set on its first send (the footer rule
        reads it); one statement for new and first-texted contacts, a read for everyone else."""
        rows = self.db.execute(
            "INSERT INTO contacts (number, created_at, updated_at, first_texted_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (number) DO UPDATE SET first_texted_at = excluded.first_texted_at"
            " WHERE contacts.first_texted_at IS NULL RETURNING id",
            (number, at, at, at),
        ).fetchall()
        if not rows:
            rows = self.db.execute("SELECT id FROM contacts WHERE number = ?", (number,)).fetchall()
        return int(rows[0][0])

    def note_inbound(self, contact_id: int, modem_id: int, at: str) -> None:
        self.db.execute(
            "UPDATE contacts SET last_modem_id = ?, last_inbound_at = ? WHERE id = ?", (modem_id, at, contact_id)
        )


# What a thread carries besides its messages, and how two threads' values combine when one is merged into
# the other (the thread kept wins; the merged one fills what it lacks).
_MERGED_FIELDS = ("assigned_to", "team", "menu", "after_hours_replied_at", "last_message_at", "likely_opt_out",
                  "unread", "status")


class Conversations:
    """Threads: one per contact and SIM, which is what staff read and answer in the inbox.

    A message can be queued before anyone knows which SIM will send it. It then waits in the contact's
    thread if there is one, or in a thread with no SIM yet (`modem_id` 0) that becomes the SIM's thread
    when a SIM is known (the first send, or the patient writing in), keeping its id, assignment and unread
    count. A thread left empty when its message goes out through another SIM is merged into that SIM's
    thread. So staff see one thread per contact and SIM, whatever the order of events.
    """

    def __init__(self, db: Db, *, audit: AuditLog) -> None:
        self.db = db
        self.audit = audit

    def for_contact(self, contact_id: int, modem_id: int) -> int:
        """The thread for `contact_id` on SIM `modem_id`, created if new. With no SIM (0): the contact's
        latest thread, whichever SIM it is on, so a queued message does not start a second one."""
        if modem_id:
            return self._on_sim(contact_id, modem_id, None)
        row = self.db.one("SELECT id FROM conversations WHERE contact_id = ?"
                          " ORDER BY modem_id = 0, last_message_at DESC NULLS LAST, id DESC LIMIT 1", (contact_id,))
        if row is not None:
            return int(row["id"])
        cur = self.db.execute("INSERT INTO conversations (contact_id, modem_id, created_at) VALUES (?, 0, ?)",
                              (contact_id, self.db.now()))
        return int(cur.lastrowid or 0)

    def _on_sim(self, contact_id: int, modem_id: int, at: str | None) -> int:
        """The thread on `modem_id` (its last message at `at`, when given): the existing one, else the
        contact's thread waiting for a SIM, which becomes this SIM's, else a new one."""
        stamp = "last_message_at = COALESCE(?, last_message_at)"
        for sql, params in (
            (f"UPDATE conversations SET {stamp} WHERE contact_id = ? AND modem_id = ? RETURNING id",
             (at, contact_id, modem_id)),
            (f"UPDATE conversations SET modem_id = ?, {stamp} WHERE contact_id = ? AND modem_id = 0 RETURNING id",
             (modem_id, at, contact_id)),
            ("INSERT INTO conversations (contact_id, modem_id, created_at, last_message_at) VALUES (?, ?, ?, ?)"
             " RETURNING id", (contact_id, modem_id, self.db.now(), at)),
        ):
            rows = self.db.execute(sql, params).fetchall()
            if rows:
                return int(rows[0][0])
        raise NotFound(f"no conversation for contact #{contact_id} on modem #{modem_id}")  # unreachable: INSERT

    def after_send(self, contact_id: int, modem_id: int, current: int | None, message_id: int, at: str) -> int:
        """The thread a message sent through `modem_id` at `at` belongs to, its last message stamped.

        `current` is the thread it was queued in. When that is already this SIM's, one statement (this
        runs in every send's commit). Otherwise the message moves, and a thread it leaves empty becomes
        this SIM's (when the SIM has none yet) or is merged into it, so no empty thread stays behind.
        """
        if current is None:
            return self._on_sim(contact_id, modem_id, at)
        if self.db.execute("UPDATE conversations SET last_message_at = ? WHERE id = ? AND modem_id = ? RETURNING id",
                           (at, current, modem_id)).fetchall():
            return current
        left_empty = not self.db.scalar(
            "SELECT EXISTS (SELECT 1 FROM messages WHERE conversation_id = ? AND id != ?)"
            " OR EXISTS (SELECT 1 FROM inbound WHERE conversation_id = ?)", (current, message_id, current))
        target = self.db.one("SELECT id FROM conversations WHERE contact_id = ? AND modem_id = ?",
                             (contact_id, modem_id))
        if target is None and left_empty:
            self.db.execute("UPDATE conversations SET modem_id = ?, last_message_at = ? WHERE id = ?",
                            (modem_id, at, current))
            return current
        kept = self._on_sim(contact_id, modem_id, at)
        if left_empty:
            self.merge(current, into=kept, actor="outbox")
        return kept

    def merge(self, source: int, *, into: int, actor: str) -> None:
        """Fold thread `source` into `into`: its messages move, what `into` lacks (assignment, team, menu)
        comes from `source`, unread counts add up, an unread `source` reopens `into`; then `source` goes."""
        with self.db.transaction():
            rows = {r["id"]: r for r in self.db.all(
                f"SELECT id, {', '.join(_MERGED_FIELDS)} FROM conversations WHERE id IN (?, ?)", (source, into))}
            if source == into or len(rows) != 2:
                raise NotFound(f"cannot merge conversation #{source} into #{into}: both must exist")
            old, new = rows[source], rows[into]
            merged = {k: new[k] if new[k] is not None else old[k]
                      for k in ("assigned_to", "team", "menu", "after_hours_replied_at")}
            merged["last_message_at"] = max(filter(None, (new["last_message_at"], old["last_message_at"])),
                                            default=None)
            merged["likely_opt_out"] = max(new["likely_opt_out"], old["likely_opt_out"])
            merged["unread"] = new["unread"] + old["unread"]
            merged["status"] = "open" if old["unread"] else new["status"]
            self.db.execute("UPDATE messages SET conversation_id = ? WHERE conversation_id = ?", (into, source))
            self.db.execute("UPDATE inbound SET conversation_id = ? WHERE conversation_id = ?", (into, source))
            self.db.execute("DELETE FROM conversations WHERE id = ?", (source,))
            sets = ", ".join(f"{k} = ?" for k in merged)
            self.db.execute(f"UPDATE conversations SET {sets} WHERE id = ?", (*merged.values(), into))
            self.audit.record(actor, "conversation.merged", "conversation", into, {"from": source})

    def get(self, conversation_id: int) -> dict[str, Any]:
        row = self.db.one(
            "SELECT c.*, k.number, k.name, k.first_name, m.name AS modem_name, m.msisdn AS modem_msisdn"
            " FROM conversations c JOIN contacts k ON k.id = c.contact_id"
            " LEFT JOIN modems m ON m.id = c.modem_id WHERE c.id = ?",
            (conversation_id,),
        )
        if row is None:
            raise NotFound(f"no conversation #{conversation_id}")
        return row

    def threads(
        self,
        *,
        status: str | None = None,
        team: str | None = None,
        unread_only: bool = False,
        limit: int = 50,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        clause, params = where(("c.status = ?", status), ("c.team = ?", team), ("c.unread > 0", unread_only))
        sql = (
            "SELECT c.*, k.number, k.name, m.name AS modem_name FROM conversations c"
            " JOIN contacts k ON k.id = c.contact_id LEFT JOIN modems m ON m.id = c.modem_id"
            + clause
            + " ORDER BY c.last_message_at DESC NULLS LAST, c.id DESC LIMIT ? OFFSET ?"
        )
        return self.db.all(sql, (*params, limit, offset))

    def history(self, conversation_id: int) -> list[dict[str, Any]]:
        """Both directions of one thread, oldest first; a received text carries `notes`, what the codec
        noticed in it (or why it could not be read), for staff to see beside it."""
        conv = self.get(conversation_id)
        rows = self.db.all(
            "SELECT 'in' AS direction, id, body, received_at AS at, NULL AS state, keyword, NULL AS outcome,"
            " decode_error, decode_notes FROM inbound WHERE conversation_id = :c"
            " UNION ALL SELECT 'out', id, body, created_at, state, NULL, outcome, NULL, NULL FROM messages"
            " WHERE to_number = :n AND (conversation_id = :c OR (conversation_id IS NULL))"
            " ORDER BY at, direction",
            {"c": conversation_id, "n": conv["number"]},
        )
        for row in rows:
            notes = json.loads(row.pop("decode_notes") or "[]")
            error = row.pop("decode_error")
            row["notes"] = [error, *notes] if error else notes
        return rows

    def update(self, conversation_id: int, *, actor: str, **fields: Any) -> None:
        allowed = {"status", "team", "assigned_to", "unread", "likely_opt_out", "after_hours_replied_at", "menu"}
        bad = set(fields) - allowed
        if bad:
            raise ValueError(f"unknown conversation fields: {sorted(bad)}")
        if not fields:
            return
        with self.db.transaction():
            sets = ", ".join(f"{k} = ?" for k in fields)
            self.db.execute(f"UPDATE conversations SET {sets} WHERE id = ?", (*fields.values(), conversation_id))
            self.audit.record(actor, "conversation.update", "conversation", conversation_id, fields)

    def note_inbound(self, conversation_id: int, at: str) -> None:
        """A message came in on this thread: one more unread, and it is open again."""
        self.db.execute(
            "UPDATE conversations SET unread = unread + 1, last_message_at = ?, status = 'open' WHERE id = ?",
            (at, conversation_id),
        )

    def touch(self, conversation_id: int, at: str) -> None:
        self.db.execute("UPDATE conversations SET last_message_at = ? WHERE id = ?", (at, conversation_id))
