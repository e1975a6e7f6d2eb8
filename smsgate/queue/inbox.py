"""Inbound messages and the fragments of multipart ones awaiting reassembly.

The daemon stores a message (unique key) and commits before it deletes the modem's copy; reading the
same SMS again is then a no-op, which is what makes a crash between the two steps harmless.
"""

from __future__ import annotations

import hashlib
from typing import Any

from .contacts import Contacts, Conversations
from .db import Db
from .errors import NotFound
from .modems import ModemRegistry
from .records import Inbound


def inbound_key(modem_identity: str, tpdu_hex: str) -> str:
    """Dedupe key of one received SMS: the receiving SIM plus the TPDU (sender, timestamp, UDH, text)."""
    return hashlib.sha256(f"{modem_identity}|{tpdu_hex.upper()}".encode()).hexdigest()


class Inbox:
    """Received messages, stored once each, and the parts of long ones waiting to be joined."""

    def __init__(self, db: Db, *, contacts: Contacts, conversations: Conversations, modems: ModemRegistry) -> None:
        self.db = db
        self.contacts = contacts
        self.conversations = conversations
        self.modems = modems

    def store(self, *, modem_id: int | None, sender: str, body: str, dedupe_key: str,
              sent_at: str | None = None, pdu: str | None = None, encoding: str | None = None,
              decode_error: str | None = None, parts_total: int = 1,
              missing_parts: str | None = None) -> tuple[Inbound, bool]:
        """Store a received message once. Returns (row, created); created is False for a re-read."""
        now = self.db.now()
        with self.db.transaction():
            existing = self.db.one("SELECT * FROM inbound WHERE dedupe_key = ?", (dedupe_key,))
            if existing is not None:
                return _inbound(existing), False
            number = self.contacts.canonical(sender)
            contact_id = self.contacts.ensure(number)
            conversation_id = self.conversations.for_contact(contact_id, modem_id or 0)
            cur = self.db.execute(
                "INSERT INTO inbound (dedupe_key, modem_id, sender, body, encoding, sent_at, received_at, pdu,"
                " decode_error, parts_total, missing_parts, contact_id, conversation_id)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (dedupe_key, modem_id, number, body, encoding, sent_at, now, pdu, decode_error, parts_total,
                 missing_parts, contact_id, conversation_id),
            )
            if modem_id is not None:
                self.contacts.note_inbound(contact_id, modem_id, now)
                self.modems.count_received(modem_id)
            self.conversations.note_inbound(conversation_id, now)
            row = self.db.one("SELECT * FROM inbound WHERE id = ?", (cur.lastrowid,))
            assert row is not None
            return _inbound(row), True

    def get(self, inbound_id: int) -> Inbound:
        row = self.db.one("SELECT * FROM inbound WHERE id = ?", (inbound_id,))
        if row is None:
            raise NotFound(f"no inbound message #{inbound_id}")
        return _inbound(row)

    def recent(self, *, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        return self.db.all("SELECT * FROM inbound ORDER BY id DESC LIMIT ? OFFSET ?", (limit, offset))

    def mark_handled(self, inbound_id: int, *, keyword: str | None = None, action: str | None = None,
                     in_reply_to: int | None = None, likely_opt_out: bool = False) -> None:
        self.db.execute(
            "UPDATE inbound SET handled_at = ?, keyword = ?, action = ?, in_reply_to = COALESCE(?, in_reply_to),"
            " likely_opt_out = ? WHERE id = ?",
            (self.db.now(), keyword, action, in_reply_to, int(likely_opt_out), inbound_id),
        )

    def unhandled(self, limit: int = 100) -> list[Inbound]:
        return [_inbound(r) for r in self.db.all(
            "SELECT * FROM inbound WHERE handled_at IS NULL ORDER BY id LIMIT ?", (limit,))]

    def handled_at(self, inbound_id: int) -> str | None:
        row = self.db.one("SELECT handled_at FROM inbound WHERE id = ?", (inbound_id,))
        if row is None:
            raise NotFound(f"no inbound message #{inbound_id}")
        handled = row["handled_at"]
        return None if handled is None else str(handled)

    def erase_texts(self, number: str, marker: str) -> list[int]:
        """Erasure: the texts received from `number` (and parts still waiting to be joined) keep their rows
        but not their words or PDUs. Returns the ids of the received messages."""
        ids = [r["id"] for r in self.db.all("SELECT id FROM inbound WHERE sender = ?", (number,))]
        self.db.execute("UPDATE inbound SET body = ?, pdu = NULL WHERE sender = ?", (marker, number))
        self.db.execute("UPDATE inbound_fragments SET body = ?, pdu = NULL WHERE sender IN (?, ?)",
                        (marker, number, number.lstrip("+")))
        return ids

    # -- multipart fragments ------------------------------------------------------------------------
    def add_fragment(self, *, modem_id: int | None, sender: str, ref: int, ref_bits: int, total: int,
                     seq: int, body: str, dedupe_key: str, encoding: str | None = None, sent_at: str | None = None,
                     pdu: str | None = None) -> list[dict[str, Any]]:
        """Keep one part; returns every part of its group seen so far (duplicates absorbed)."""
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO inbound_fragments (dedupe_key, modem_id, sender, ref, ref_bits, total, seq, body,"
                " encoding, sent_at, pdu, received_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                (dedupe_key, modem_id, sender, ref, ref_bits, total, seq, body, encoding, sent_at, pdu, self.db.now()),
            )
            return self.fragment_group(modem_id, sender, ref, ref_bits, total)

    def fragment_group(self, modem_id: int | None, sender: str, ref: int, ref_bits: int,
                       total: int) -> list[dict[str, Any]]:
        return self.db.all(
            "SELECT * FROM inbound_fragments WHERE modem_id IS ? AND sender = ? AND ref = ? AND ref_bits = ?"
            " AND total = ? ORDER BY seq, id", (modem_id, sender, ref, ref_bits, total))

    def drop_fragments(self, ids: list[int]) -> None:
        self.db.executemany("DELETE FROM inbound_fragments WHERE id = ?", ((i,) for i in ids))

    def stale_fragment_groups(self, older_than: str) -> list[dict[str, Any]]:
        """Groups whose first part arrived before `older_than` (timestamp text): to be stored with a gap."""
        return self.db.all(
            "SELECT modem_id, sender, ref, ref_bits, total, MIN(received_at) AS first_at"
            " FROM inbound_fragments GROUP BY modem_id, sender, ref, ref_bits, total HAVING first_at < ?",
            (older_than,))


def _inbound(row: dict[str, Any]) -> Inbound:
    return Inbound(
        id=row["id"], modem_id=row["modem_id"], sender=row["sender"], body=row["body"],
        received_at=row["received_at"], sent_at=row["sent_at"], encoding=row["encoding"],
        conversation_id=row["conversation_id"], contact_id=row["contact_id"], decode_error=row["decode_error"],
        parts_total=row["parts_total"], missing_parts=row["missing_parts"], in_reply_to=row["in_reply_to"],
    )
