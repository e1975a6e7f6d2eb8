"""The waitlist: patients waiting for an earlier slot, the slots cancellations free, and the offers sent.

The one rule that matters here is "the first YES wins": `Waitlist.take` fills a slot with a single
conditional UPDATE (`... WHERE state = 'open'`) inside a write transaction, so two patients answering at
the same moment, through two processes, cannot both get it; the loser's offer is marked `taken`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from smsgate.numbers import InvalidNumber, normalize

from .audit import AuditLog
from .clock import ts
from .contacts import Contacts
from .db import Db
from .errors import NotFound

__all__ = ["ENTRY_STATES", "Offer", "Slot", "Waitlist", "WaitlistEntry", "WaitlistError"]

ENTRY_STATES = ("waiting", "filled", "removed")
MAX_TEXT = 500


class WaitlistError(ValueError):
    """A waitlist request that cannot be done as asked; the message says why and what to do instead."""


@dataclass(frozen=True)
class WaitlistEntry:
    id: int
    contact_id: int
    number: str
    name: str | None
    provider: str | None
    location: str | None
    earliest: datetime | None
    latest: datetime | None
    appointment_id: int | None
    notes: str | None
    state: str
    source: str
    created_at: str
    updated_at: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "number": self.number, "name": self.name, "provider": self.provider,
                "location": self.location, "earliest": ts(self.earliest) if self.earliest else None,
                "latest": ts(self.latest) if self.latest else None, "appointment_id": self.appointment_id,
                "notes": self.notes, "state": self.state, "source": self.source, "created_at": self.created_at,
                "updated_at": self.updated_at}


@dataclass(frozen=True)
class Slot:
    """A freed slot, with the details of the appointment whose cancellation freed it."""

    id: int
    event_id: int
    cancelled_appointment_id: int
    provider: str | None
    location: str | None
    appointment_type: str | None
    start: datetime
    timezone: str
    duration_minutes: int | None
    state: str
    expires_at: str
    filled_offer_id: int | None
    filled_appointment_id: int | None


@dataclass(frozen=True)
class Offer:
    id: int
    slot_id: int
    entry_id: int
    message_id: int | None
    state: str
    reason: str | None
    created_at: str
    answered_at: str | None


_ENTRY_SELECT = ("SELECT w.*, c.number, c.name FROM waitlist w JOIN contacts c ON c.id = w.contact_id")


class Waitlist:
    """The waitlist, freed slots and offers. Entries are audited; slots and offers are their own record."""

    def __init__(self, db: Db, *, audit: AuditLog, contacts: Contacts) -> None:
        self.db = db
        self.audit = audit
        self.contacts = contacts

    # -- entries -------------------------------------------------------------------------------------
    def add(self, number: str, *, source: str, actor: str, provider: str | None = None,
            location: str | None = None, earliest: datetime | None = None, latest: datetime | None = None,
            appointment_id: int | None = None, notes: str | None = None) -> WaitlistEntry:
        """Put a patient on the waitlist. `WaitlistError` when they already wait (one entry each, so an
        offer is never sent twice for one person) or the request cannot be kept as given."""
        try:
            canonical = normalize(number or "", default_region=self.db.default_region)
        except InvalidNumber as exc:
            raise WaitlistError(f"the patient's number {exc}") from None
        texts = {"provider": provider, "location": location, "notes": notes}
        for name, value in texts.items():
            if value is not None and len(value) > MAX_TEXT:
                raise WaitlistError(f"the {name} is {len(value)} characters; at most {MAX_TEXT} are kept")
        for name, at in (("earliest", earliest), ("latest", latest)):
            if at is not None and at.utcoffset() is None:
                raise WaitlistError(f"the {name} time {at.isoformat()} has no time zone")
        if earliest is not None and latest is not None and latest < earliest:
            raise WaitlistError(f"the window ends ({ts(latest)}) before it starts ({ts(earliest)}); swap them")
        clean = {k: (v.strip() or None) if v is not None else None for k, v in texts.items()}
        with self.db.transaction():
            if appointment_id is not None and self.db.one("SELECT 1 FROM appointments WHERE id = ?",
                                                          (appointment_id,)) is None:
                raise WaitlistError(f"there is no appointment #{appointment_id} to move")
            contact_id = self.contacts.ensure(canonical)
            existing = self.waiting(canonical)
            if existing is not None:
                raise WaitlistError(f"{canonical} is already on the waitlist (entry #{existing.id}); remove that "
                                    "entry first to change what they wait for")
            now = self.db.now()
            cur = self.db.execute(
                "INSERT INTO waitlist (contact_id, provider, location, earliest_at, latest_at, appointment_id, notes,"
                " state, source, created_at, updated_at) VALUES (?,?,?,?,?,?,?,'waiting',?,?,?)",
                (contact_id, clean["provider"], clean["location"], ts(earliest) if earliest else None,
                 ts(latest) if latest else None, appointment_id, clean["notes"], source, now, now))
            entry_id = int(cur.lastrowid or 0)
            self.audit.record(actor, "waitlist.add", "waitlist", entry_id,
                              {"source": source, **{k: v for k, v in clean.items() if v}})
            return self.get(entry_id)

    def get(self, entry_id: int) -> WaitlistEntry:
        row = self.db.one(f"{_ENTRY_SELECT} WHERE w.id = ?", (entry_id,))
        if row is None:
            raise NotFound(f"no waitlist entry #{entry_id}")
        return _entry(row)

    def waiting(self, number: str) -> WaitlistEntry | None:
        row = self.db.one(f"{_ENTRY_SELECT} WHERE c.number = ? AND w.state = 'waiting'", (number,))
        return _entry(row) if row is not None else None

    def entries(self, *, states: Sequence[str] = ("waiting",)) -> list[WaitlistEntry]:
        """Entries in the given states, first come first (the order offers go out in)."""
        marks = ", ".join("?" * len(states))
        rows = self.db.all(f"{_ENTRY_SELECT} WHERE w.state IN ({marks}) ORDER BY w.created_at, w.id", tuple(states))
        return [_entry(r) for r in rows]

    def remove(self, entry_id: int, *, actor: str, reason: str = "removed by staff") -> WaitlistEntry:
        with self.db.transaction():
            entry = self.get(entry_id)
            if entry.state != "waiting":
                raise WaitlistError(f"waitlist entry #{entry_id} is {entry.state}, not waiting: nothing to remove")
            self.db.execute("UPDATE waitlist SET state = 'removed', updated_at = ? WHERE id = ?",
                            (self.db.now(), entry_id))
            self.audit.record(actor, "waitlist.remove", "waitlist", entry_id, {"reason": reason})
            return self.get(entry_id)

    def matching(self, slot: Slot, *, exclude_contact: int | None, limit: int) -> list[WaitlistEntry]:
        """Waiting entries this slot suits, first come first: same provider and place when they asked for
        one (compared without case), the slot inside their window, and earlier than the appointment of
        theirs it would replace. Entries already offered this slot are left out."""
        start = ts(slot.start)
        rows = self.db.all(
            f"{_ENTRY_SELECT} LEFT JOIN appointments a ON a.id = w.appointment_id"
            " WHERE w.state = 'waiting'"
            " AND (w.provider IS NULL OR LOWER(w.provider) = LOWER(?))"
            " AND (w.location IS NULL OR LOWER(w.location) = LOWER(?))"
            " AND (w.earliest_at IS NULL OR w.earliest_at <= ?)"
            " AND (w.latest_at IS NULL OR w.latest_at >= ?)"
            " AND (a.id IS NULL OR a.start_at > ?)"
            " AND (? IS NULL OR w.contact_id <> ?)"
            " AND NOT EXISTS (SELECT 1 FROM waitlist_offers o WHERE o.slot_id = ? AND o.entry_id = w.id)"
            " ORDER BY w.created_at, w.id LIMIT ?",
            (slot.provider or "", slot.location or "", start, start, start, exclude_contact, exclude_contact,
             slot.id, limit))
        return [_entry(r) for r in rows]

    # -- slots and offers ----------------------------------------------------------------------------
    def open_slot(self, *, event_id: int, appointment_id: int, provider: str | None, location: str | None,
                  appointment_type: str | None, start: datetime, timezone: str, duration_minutes: int | None,
                  expires_at: datetime) -> Slot:
        """The slot a cancellation event freed; the same event twice gives the same slot."""
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO waitlist_slots (event_id, cancelled_appointment_id, provider, location, appointment_type,"
                " start_at, timezone, duration_minutes, state, expires_at, created_at)"
                " VALUES (?,?,?,?,?,?,?,?,'open',?,?) ON CONFLICT (event_id) DO NOTHING",
                (event_id, appointment_id, provider, location, appointment_type, ts(start), timezone,
                 duration_minutes, ts(expires_at), self.db.now()))
            row = self.db.one("SELECT * FROM waitlist_slots WHERE event_id = ?", (event_id,))
            assert row is not None
            return _slot(row)

    def slot(self, slot_id: int) -> Slot:
        row = self.db.one("SELECT * FROM waitlist_slots WHERE id = ?", (slot_id,))
        if row is None:
            raise NotFound(f"no waitlist slot #{slot_id}")
        return _slot(row)

    def record_offer(self, slot_id: int, entry_id: int, *, message_id: int | None, state: str = "offered",
                     reason: str | None = None) -> Offer:
        with self.db.transaction():
            cur = self.db.execute(
                "INSERT INTO waitlist_offers (slot_id, entry_id, message_id, state, reason, created_at)"
                " VALUES (?,?,?,?,?,?)", (slot_id, entry_id, message_id, state, reason, self.db.now()))
            return self.offer(int(cur.lastrowid or 0))

    def offer(self, offer_id: int) -> Offer:
        row = self.db.one("SELECT * FROM waitlist_offers WHERE id = ?", (offer_id,))
        if row is None:
            raise NotFound(f"no waitlist offer #{offer_id}")
        return _offer(row)

    def offer_for_message(self, message_id: int) -> Offer | None:
        row = self.db.one("SELECT * FROM waitlist_offers WHERE message_id = ?", (message_id,))
        return _offer(row) if row is not None else None

    def offers(self, slot_id: int) -> list[Offer]:
        return [_offer(r) for r in self.db.all("SELECT * FROM waitlist_offers WHERE slot_id = ? ORDER BY id",
                                               (slot_id,))]

    def take(self, offer_id: int, now: datetime) -> str:
        """A YES to an offer: `won` when this YES filled the slot, else `taken` (someone was first) or
        `expired`. The slot is filled by one conditional UPDATE, so exactly one YES can win it."""
        with self.db.transaction():
            offer = self.offer(offer_id)
            if offer.state != "offered":
                return offer.state
            at = ts(now)
            cur = self.db.execute(
                "UPDATE waitlist_slots SET state = 'filled', filled_offer_id = ?, filled_at = ?"
                " WHERE id = ? AND state = 'open' AND expires_at > ?"
                " AND EXISTS (SELECT 1 FROM waitlist w WHERE w.id = ? AND w.state = 'waiting')",
                (offer_id, at, offer.slot_id, at, offer.entry_id))
            if cur.rowcount == 1:
                result = "won"
                self.db.execute("UPDATE waitlist SET state = 'filled', updated_at = ? WHERE id = ?",
                                (at, offer.entry_id))
                self.audit.record("waitlist", "waitlist.filled", "waitlist", offer.entry_id,
                                  {"slot_id": offer.slot_id, "offer_id": offer_id})
            else:
                slot = self.slot(offer.slot_id)
                result = "expired" if slot.state == "expired" or (slot.state == "open" and slot.expires_at <= at) \
                    else "taken"
            self.db.execute("UPDATE waitlist_offers SET state = ?, answered_at = ? WHERE id = ?",
                            (result, at, offer_id))
            return result

    def filled_with(self, slot_id: int, appointment_id: int) -> None:
        """The appointment the winner now has for the slot."""
        self.db.execute("UPDATE waitlist_slots SET filled_appointment_id = ? WHERE id = ?", (appointment_id, slot_id))

    def expire_slots(self, now: datetime) -> list[Slot]:
        """Open slots whose offers ran out, now `expired`, with their unanswered offers."""
        at = ts(now)
        with self.db.transaction():
            rows = self.db.all("SELECT * FROM waitlist_slots WHERE state = 'open' AND expires_at <= ?", (at,))
            for r in rows:
                self.db.execute("UPDATE waitlist_slots SET state = 'expired' WHERE id = ?", (r["id"],))
                self.db.execute("UPDATE waitlist_offers SET state = 'expired' WHERE slot_id = ? AND state = 'offered'",
                                (r["id"],))
            return [_slot({**r, "state": "expired"}) for r in rows]


def _dt(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _entry(row: dict[str, Any]) -> WaitlistEntry:
    return WaitlistEntry(
        id=int(row["id"]), contact_id=int(row["contact_id"]), number=row["number"], name=row["name"],
        provider=row["provider"], location=row["location"], earliest=_dt(row["earliest_at"]),
        latest=_dt(row["latest_at"]), appointment_id=row["appointment_id"], notes=row["notes"], state=row["state"],
        source=row["source"], created_at=row["created_at"], updated_at=row["updated_at"])


def _slot(row: dict[str, Any]) -> Slot:
    return Slot(
        id=int(row["id"]), event_id=int(row["event_id"]), cancelled_appointment_id=int(row["cancelled_appointment_id"]),
        provider=row["provider"], location=row["location"], appointment_type=row["appointment_type"],
        start=datetime.fromisoformat(row["start_at"]), timezone=row["timezone"],
        duration_minutes=row["duration_minutes"], state=row["state"], expires_at=row["expires_at"],
        filled_offer_id=row["filled_offer_id"], filled_appointment_id=row["filled_appointment_id"])


def _offer(row: dict[str, Any]) -> Offer:
    return Offer(id=int(row["id"]), slot_id=int(row["slot_id"]), entry_id=int(row["entry_id"]),
                 message_id=row["message_id"], state=row["state"], reason=row["reason"],
                 created_at=row["created_at"], answered_at=row["answered_at"])
