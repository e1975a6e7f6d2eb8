"""Inbound messages and the fragments of multipart ones awaiting reassembly.

The daemon stores a message (unique key) and commits before it deletes the modem's copy; reading the
same SMS again is then a no-op, which is what makes a crash between the two steps harmless.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from smsgate.at_commands.reassembly import Fragment, group_for

from .clock import parse_ts
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
              missing_parts: str | None = None, decode_notes: Sequence[str] = ()) -> tuple[Inbound, bool]:
        """Store a received message once. Returns (row, created); created is False for a re-read.

        `decode_notes` are the codec's sentences about a text that decoded anyway; staff see them beside it.
        """
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
                " decode_error, parts_total, missing_parts, contact_id, conversation_id, decode_notes)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (dedupe_key, modem_id, number, body, encoding, sent_at, now, pdu, decode_error, parts_total,
                 missing_parts, contact_id, conversation_id, notes_text(decode_notes)),
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
                     pdu: str | None = None, ends_in_escape: bool = False,
                     decode_notes: Sequence[str] = ()) -> list[dict[str, Any]]:
        """Keep one part in the group of the message it belongs to; returns that group's parts so far.

        The same PDU read again finds its own group. Otherwise `reassembly.group_for` picks among the
        groups of its key: a part that conflicts with a kept one (same number, other text or timestamp) is
        another message reusing the reference and starts a group of its own, so every part is kept before
        the caller may delete it from the SIM.
        """
        with self.db.transaction():
            known = self.db.one("SELECT group_id FROM inbound_fragments WHERE dedupe_key = ?", (dedupe_key,))
            if known is not None:
                return self.fragment_group(int(known["group_id"]))
            kept = self.db.all(
                "SELECT * FROM inbound_fragments WHERE modem_id IS ? AND sender = ? AND ref = ? AND ref_bits = ?"
                " AND total = ? ORDER BY group_id, seq, id", (modem_id, sender, ref, ref_bits, total))
            groups: dict[int, list[dict[str, Any]]] = {}
            for kept_row in kept:
                groups.setdefault(int(kept_row["group_id"]), []).append(kept_row)
            row = {"dedupe_key": dedupe_key, "modem_id": modem_id, "sender": sender, "ref": ref, "ref_bits": ref_bits,
                   "total": total, "seq": seq, "body": body, "encoding": encoding, "sent_at": sent_at, "pdu": pdu,
                   "received_at": self.db.now(), "ends_in_escape": int(ends_in_escape),
                   "decode_notes": notes_text(decode_notes)}
            index = group_for(fragment_of(row), [[fragment_of(r) for r in g] for g in groups.values()])
            joins = None if index is None else list(groups)[index]
            cur = self.db.execute(
                f"INSERT INTO inbound_fragments ({', '.join(row)}, group_id) VALUES ({', '.join('?' * len(row))}, ?)",
                (*row.values(), joins),
            )
            if joins is None:
                joins = int(cur.lastrowid or 0)
                self.db.execute("UPDATE inbound_fragments SET group_id = id WHERE id = ?", (joins,))
            return self.fragment_group(joins)

    def fragment_group(self, group_id: int) -> list[dict[str, Any]]:
        """The parts kept of one message, in part order (copies of a part after the first)."""
        return self.db.all("SELECT * FROM inbound_fragments WHERE group_id = ? ORDER BY seq, id", (group_id,))

    def drop_fragments(self, ids: list[int]) -> None:
        self.db.executemany("DELETE FROM inbound_fragments WHERE id = ?", ((i,) for i in ids))

    def stale_fragment_groups(self, older_than: str) -> list[dict[str, Any]]:
        """Groups whose first part arrived before `older_than` (timestamp text): to be stored with a gap."""
        return self.db.all(
            "SELECT group_id, modem_id, sender, ref, ref_bits, total, MIN(received_at) AS first_at"
            " FROM inbound_fragments GROUP BY group_id, modem_id, sender, ref, ref_bits, total"
            " HAVING MIN(received_at) < ?", (older_than,))


def fragment_of(row: dict[str, Any]) -> Fragment:
    """A kept fragment row as the reassembly code reads it."""
    return Fragment(row["sender"], row["ref"], row["ref_bits"], row["total"], row["seq"], row["body"],
                    row["encoding"], bool(row["ends_in_escape"]),
                    parse_ts(row["sent_at"]) if row["sent_at"] else None)


def _inbound(row: dict[str, Any]) -> Inbound:
    return Inbound(
        id=row["id"], modem_id=row["modem_id"], sender=row["sender"], body=row["body"],
        received_at=row["received_at"], sent_at=row["sent_at"], encoding=row["encoding"],
        conversation_id=row["conversation_id"], contact_id=row["contact_id"], decode_error=row["decode_error"],
        parts_total=row["parts_total"], missing_parts=row["missing_parts"], in_reply_to=row["in_reply_to"],
        decode_notes=notes_of(row),
    )


def notes_text(notes: Sequence[str]) -> str | None:
    """The stored form of decode notes: a JSON list, or NULL when the codec noticed nothing."""
    return json.dumps(list(notes), ensure_ascii=False) if notes else None


def notes_of(row: dict[str, Any]) -> tuple[str, ...]:
    """The decode notes of an inbound or fragment row."""
    raw = row.get("decode_notes")
    return tuple(json.loads(raw)) if raw else ()
