"""Appointments from the clinic's system, their history and the reminders planned for them.

Every source (an `.ics` file, FHIR JSON, later a CSV file, a feed and the API) turns what it reads into an
`AppointmentInput` and hands it to `Appointments.upsert`, the one writer: keyed by the clinic's own id,
idempotent (the same data twice changes nothing), refusing data older than what is stored (a lower
SEQUENCE or an earlier LAST-MODIFIED), and recording each change as an append-only event row.

Statuses: booked, confirmed, cancelled, rescheduled, completed, no-show. A source says booked, confirmed,
cancelled, completed or no-show; "rescheduled" is what a booked appointment becomes when its time moves,
so that a patient's earlier "YES" (which confirmed the old time) no longer counts as a confirmation.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from smsgate.numbers import InvalidNumber, normalize

from .clock import ts
from .contacts import Contacts, ContactValues
from .db import Db
from .errors import NotFound

__all__ = [
    "ACTIVE_STATUSES",
    "EVENT_KINDS",
    "SOURCE_STATUSES",
    "STATUSES",
    "Appointment",
    "AppointmentEvent",
    "AppointmentInput",
    "AppointmentRejected",
    "Appointments",
    "NewReminder",
    "ReminderCancel",
    "ReminderDiff",
    "ReminderRetime",
    "ReminderSkip",
    "StoredReminder",
    "UpsertResult",
]

STATUSES = ("booked", "confirmed", "cancelled", "rescheduled", "completed", "no-show")
# What a source may say; "rescheduled" is the store's own conclusion from a moved start.
SOURCE_STATUSES = ("booked", "confirmed", "cancelled", "completed", "no-show")
# Statuses that still lead to a visit, and so to reminders.
ACTIVE_STATUSES = frozenset({"booked", "confirmed", "rescheduled"})
EVENT_KINDS = ("created", "updated", "confirmed", "cancelled", "rescheduled", "reschedule_requested", "no_show")
_STATUS_EVENT = {"confirmed": "confirmed", "cancelled": "cancelled", "no-show": "no_show"}
# Patient answers to a "please confirm" reminder (the outcomes of its expected answers).
ANSWER_OUTCOMES = ("confirmed", "cancelled", "reschedule")

MAX_EXTERNAL_ID = 255
MAX_TEXT = 2000
MAX_DURATION_MINUTES = 31 * 24 * 60

UpsertAction = Literal["created", "updated", "unchanged", "refused"]


class AppointmentRejected(ValueError):
    """An appointment a source sent that cannot be stored as given; the message names it and the fix."""


@dataclass(frozen=True)
class AppointmentInput:
    """One appointment as any source reads it, before it is checked or stored.

    `start` is an aware datetime; `timezone` is the IANA zone its times are shown in (the event's own, else
    the clinic's). `revision` (iCalendar SEQUENCE, a FHIR numeric versionId) and `modified_at`
    (LAST-MODIFIED, meta.lastUpdated) let the store refuse a copy older than the one it has.
    """

    external_id: str
    number: str
    start: datetime
    timezone: str
    status: str = "booked"
    duration_minutes: int | None = None
    all_day: bool = False
    patient_name: str | None = None
    first_name: str | None = None
    provider: str | None = None
    location: str | None = None
    appointment_type: str | None = None
    notes: str | None = None
    revision: int | None = None
    modified_at: datetime | None = None
    # Where the source read it ("VEVENT at line 12"), for messages only; never stored or compared.
    origin: str = ""

    @property
    def label(self) -> str:
        ext = (self.external_id or "").strip() or "(no id)"
        return f"{self.origin} ({ext})" if self.origin else f"appointment {ext}"


@dataclass(frozen=True)
class Appointment:
    id: int
    external_id: str
    contact_id: int
    number: str
    patient_name: str | None
    first_name: str | None
    language: str | None
    contact_timezone: str | None
    provider: str | None
    location: str | None
    appointment_type: str | None
    start: datetime
    timezone: str
    all_day: bool
    duration_minutes: int | None
    status: str
    notes: str | None
    source: str
    revision: int | None
    modified_at: str | None
    created_at: str
    updated_at: str

    @property
    def start_at(self) -> str:
        return ts(self.start)

    @property
    def local_start(self) -> datetime:
        return self.start.astimezone(ZoneInfo(self.timezone))


@dataclass(frozen=True)
class AppointmentEvent:
    id: int
    appointment_id: int
    external_id: str
    at: str
    kind: str
    source: str
    details: dict[str, Any]


@dataclass(frozen=True)
class UpsertResult:
    """What one upsert did: `fields` are the appointment's fields that changed, `events` the history rows
    written; a refused upsert says why in `reason` and wrote nothing."""

    action: UpsertAction
    external_id: str
    appointment_id: int | None
    fields: tuple[str, ...] = ()
    events: tuple[str, ...] = ()
    reason: str | None = None
    # The appointment as stored after the upsert (as it was, when refused), so a caller that goes on to plan
    # its reminders need not read it back.
    appointment: Appointment | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class StoredReminder:
    id: int
    appointment_id: int
    step: str
    confirm: bool
    send_at: datetime
    for_start: datetime
    state: str
    message_id: int | None
    reason: str | None


@dataclass(frozen=True)
class NewReminder:
    step: str
    send_at: datetime
    confirm: bool


@dataclass(frozen=True)
class ReminderCancel:
    reminder_id: int
    step: str
    message_id: int | None
    reason: str


@dataclass(frozen=True)
class ReminderRetime:
    reminder_id: int
    step: str
    send_at: datetime


@dataclass(frozen=True)
class ReminderSkip:
    step: str
    reason: str


@dataclass(frozen=True)
class ReminderDiff:
    """What the planner decided for one appointment's reminders, for the store to apply."""

    for_start: datetime
    create: tuple[NewReminder, ...] = ()
    cancel: tuple[ReminderCancel, ...] = ()
    retime: tuple[ReminderRetime, ...] = ()
    skipped: tuple[ReminderSkip, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.create or self.cancel or self.retime)


# The appointment's own fields, compared to decide created / updated / unchanged.
_FIELDS = ("contact_id", "start_at", "timezone", "all_day", "duration_minutes", "status", "provider", "location",
           "appointment_type", "notes")
_COLUMNS = ("external_id", "contact_id", "provider", "location", "appointment_type", "start_at", "timezone", "all_day",
            "duration_minutes", "status", "notes", "source", "source_status", "source_revision", "source_modified_at",
            "created_at", "updated_at")


@dataclass
class _Checked:
    external_id: str
    number: str
    row: dict[str, Any] = field(default_factory=dict)


class Appointments:
    """The appointments table, its event history and the reminder rows; `upsert` is the one way in. The
    event rows are the appointments' own audit trail; contacts it creates are audited by `Contacts`."""

    def __init__(self, db: Db, *, contacts: Contacts) -> None:
        self.db = db
        self.contacts = contacts

    # -- the one writer ------------------------------------------------------------------------------
    def upsert(self, item: AppointmentInput, *, source: str) -> UpsertResult:
        """Store `item` (keyed by its external id) and record what changed; see the module docstring."""
        checked = self._check(item)
        with self.db.transaction():
            stored = self.db.one(f"{self._SELECT} WHERE a.external_id = ?", (checked.external_id,))
            if stored is not None:
                older = _older(item, stored)
                if older:
                    return UpsertResult("refused", checked.external_id, int(stored["id"]), reason=older,
                                        appointment=_appointment(stored))
            contact = self._contact(checked.number, item, source)
            new = {**checked.row, "contact_id": contact["contact_id"]}
            if stored is None:
                return self._create(checked.external_id, contact, new, item, source)
            return self._update(stored, contact, new, item, source)

    def _check(self, item: AppointmentInput) -> _Checked:
        ext = (item.external_id or "").strip()
        if not ext:
            raise AppointmentRejected("it has no id from the clinic's system (UID, FHIR id); smsgate keys "
                                      "appointments by it, so it cannot be stored")
        if len(ext) > MAX_EXTERNAL_ID:
            raise AppointmentRejected(f"its id {ext[:40]!r}... is {len(ext)} characters long; at most "
                                      f"{MAX_EXTERNAL_ID} are kept")
        try:
            number = normalize(item.number or "", default_region=self.db.default_region)
        except InvalidNumber as exc:
            raise AppointmentRejected(f"the patient's number {exc}") from None
        if item.start.tzinfo is None or item.start.utcoffset() is None:
            raise AppointmentRejected(f"its start {item.start.isoformat()} has no time zone")
        try:
            ZoneInfo(item.timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise AppointmentRejected(f"{item.timezone!r} is not a time zone; use an IANA name such as "
                                      "\"America/New_York\"") from None
        if item.status not in STATUSES:
            raise AppointmentRejected(f"status {item.status!r} is not one of {', '.join(STATUSES)}")
        if item.duration_minutes is not None and not 0 <= item.duration_minutes <= MAX_DURATION_MINUTES:
            raise AppointmentRejected(f"a duration of {item.duration_minutes} minutes is not possible; check "
                                      "the end time")
        texts = {"provider": item.provider, "location": item.location, "appointment_type": item.appointment_type,
                 "notes": item.notes}
        for name, value in texts.items():
            if value is not None and len(value) > MAX_TEXT:
                raise AppointmentRejected(f"its {name} is {len(value)} characters; at most {MAX_TEXT} are kept")
        row = {
            "start_at": ts(item.start), "timezone": item.timezone, "all_day": int(item.all_day),
            "duration_minutes": item.duration_minutes, "status": item.status,
            **{k: (v.strip() or None) if v is not None else None for k, v in texts.items()},
        }
        return _Checked(ext, number, row)

    def _contact(self, number: str, item: AppointmentInput, source: str) -> dict[str, Any]:
        """The patient's contact (its id and the fields an `Appointment` shows), created if new. A name is
        written only where the contact has none, so a name staff corrected is not overwritten by every
        re-import, and never onto an erased contact."""
        name = (item.patient_name or "").strip() or None
        first = (item.first_name or "").strip() or None
        actor = f"appointments:{source}"
        contact = self.contacts.get(number)
        given, family = split_name(name, first)
        if contact is None:
            if given or family:
                contact_id = self.contacts.save(number, ContactValues(first_name=given, last_name=family),
                                                actor=actor).contact.id
            else:
                contact_id = self.contacts.ensure(number)
            return {"contact_id": contact_id, "number": number, "patient_name": name, "first_name": given,
                    "language": None, "contact_timezone": None}
        out = {"contact_id": int(contact["id"]), "number": number, "patient_name": contact["name"],
               "first_name": contact["first_name"], "language": contact.get("language"),
               "contact_timezone": contact.get("timezone")}
        if contact.get("erased_at"):
            return out
        named = contact["name"] or contact["first_name"] or contact["last_name"]
        if (given or family) and not named:
            saved = self.contacts.save(number, ContactValues(first_name=given, last_name=family), actor=actor)
            out["patient_name"], out["first_name"] = saved.contact.name, saved.contact.first_name
        else:
            out["patient_name"] = contact["name"] or " ".join(
                p for p in (contact["first_name"], contact["last_name"]) if p) or None
        return out

    def _create(self, ext: str, contact: dict[str, Any], new: dict[str, Any], item: AppointmentInput,
                source: str) -> UpsertResult:
        now = self.db.now()
        row = {**new, "external_id": ext, "source": source, "source_status": item.status,
               "source_revision": item.revision, "source_modified_at": _modified(item), "created_at": now,
               "updated_at": now}
        cur = self.db.execute(
            f"INSERT INTO appointments ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
            tuple(row[k] for k in _COLUMNS),
        )
        appointment_id = int(cur.lastrowid or 0)
        self._event(appointment_id, "created", source, {**{k: new[k] for k in _FIELDS}, "number": contact["number"]},
                    now)
        return UpsertResult("created", ext, appointment_id, fields=_FIELDS, events=("created",),
                            appointment=_appointment({**row, **contact, "id": appointment_id}))

    def _update(self, stored: dict[str, Any], contact: dict[str, Any], new: dict[str, Any], item: AppointmentInput,
                source: str) -> UpsertResult:
        appointment_id = int(stored["id"])
        retimed = new["start_at"] != stored["start_at"]
        new["status"] = _next_status(stored["status"], stored["source_status"], item.status, retimed)
        changed = [k for k in _FIELDS if new[k] != stored[k]]
        now = self.db.now()
        version = (item.status, item.revision, _modified(item))
        if not changed:
            if version != (stored["source_status"], stored["source_revision"], stored["source_modified_at"]):
                # A newer copy saying the same thing: keep its version, so the older one is refused later.
                self.db.execute("UPDATE appointments SET source_status = ?, source_revision = ?,"
                                " source_modified_at = ? WHERE id = ?", (*version, appointment_id))
            return UpsertResult("unchanged", stored["external_id"], appointment_id,
                                appointment=_appointment({**stored, **contact}))
        sets = ", ".join(f"{k} = ?" for k in changed)
        self.db.execute(
            f"UPDATE appointments SET {sets}, source = ?, source_status = ?, source_revision = ?,"
            " source_modified_at = ?, updated_at = ? WHERE id = ?",
            (*(new[k] for k in changed), source, *version, now, appointment_id),
        )
        events: list[str] = []
        # A cancelled (or finished) appointment that also moved was not rescheduled: its time is a detail.
        moved = retimed and new["status"] in ACTIVE_STATUSES
        rest = [k for k in changed if k != "status" and not (k == "start_at" and moved)]
        if moved:
            events.append("rescheduled")
            self._event(appointment_id, "rescheduled", source,
                        {"from": stored["start_at"], "to": new["start_at"]}, now)
        if "status" in changed:
            kind = _STATUS_EVENT.get(new["status"])
            if kind is not None:
                events.append(kind)
                self._event(appointment_id, kind, source, {"from": stored["status"]}, now)
            elif not (moved and new["status"] == "rescheduled"):
                rest.append("status")
        if rest:
            events.append("updated")
            details = {k: [stored[k], new[k]] for k in rest}
            if "contact_id" in details:
                details["number"] = [self._number_of(stored["contact_id"]), self._number_of(new["contact_id"])]
            self._event(appointment_id, "updated", source, details, now)
        row = {**stored, **new, **contact, "source": source, "source_status": version[0],
               "source_revision": version[1], "source_modified_at": version[2], "updated_at": now}
        return UpsertResult("updated", stored["external_id"], appointment_id, fields=tuple(changed),
                            events=tuple(events), appointment=_appointment(row))

    def _number_of(self, contact_id: int) -> str | None:
        row = self.db.one("SELECT number FROM contacts WHERE id = ?", (contact_id,))
        return row["number"] if row is not None else None

    def _event(self, appointment_id: int, kind: str, source: str, details: dict[str, Any], at: str) -> None:
        self.db.execute(
            "INSERT INTO appointment_events (appointment_id, at, kind, source, details) VALUES (?,?,?,?,?)",
            (appointment_id, at, kind, source, json.dumps(details, ensure_ascii=False, default=str)),
        )

    # -- patient answers -----------------------------------------------------------------------------
    def record_answer(self, appointment_id: int, outcome: str, *, source: str) -> str:
        """A patient's answer to a reminder (`confirmed`, `cancelled`, `reschedule`): the new status, with
        its event. Asking to reschedule leaves the status as it is (staff must find a new time) but is
        recorded, since the clinic's system has to hear of it."""
        if outcome not in ANSWER_OUTCOMES:
            raise AppointmentRejected(f"{outcome!r} is not an answer to a reminder; use {', '.join(ANSWER_OUTCOMES)}")
        with self.db.transaction():
            current = self.get(appointment_id)
            now = self.db.now()
            if outcome == "reschedule":
                self._event(appointment_id, "reschedule_requested", source, {"status": current.status}, now)
                return current.status
            if current.status not in ACTIVE_STATUSES or current.status == outcome:
                return current.status
            self.db.execute("UPDATE appointments SET status = ?, source = ?, updated_at = ? WHERE id = ?",
                            (outcome, source, now, appointment_id))
            self._event(appointment_id, _STATUS_EVENT[outcome], source, {"from": current.status}, now)
            return outcome

    # -- reads ---------------------------------------------------------------------------------------
    _SELECT = ("SELECT a.*, c.number, c.name AS patient_name, c.first_name, c.language,"
               " c.timezone AS contact_timezone FROM appointments a JOIN contacts c ON c.id = a.contact_id")

    def get(self, appointment_id: int) -> Appointment:
        row = self.db.one(f"{self._SELECT} WHERE a.id = ?", (appointment_id,))
        if row is None:
            raise NotFound(f"no appointment #{appointment_id}")
        return _appointment(row)

    def by_external_id(self, external_id: str) -> Appointment | None:
        row = self.db.one(f"{self._SELECT} WHERE a.external_id = ?", (external_id.strip(),))
        return _appointment(row) if row is not None else None

    def starting_between(self, start: datetime, end: datetime) -> list[Appointment]:
        """Appointments starting in [start, end), by start time."""
        rows = self.db.all(f"{self._SELECT} WHERE a.start_at >= ? AND a.start_at < ? ORDER BY a.start_at, a.id",
                           (ts(start), ts(end)))
        return [_appointment(r) for r in rows]

    def events(self, appointment_id: int) -> list[AppointmentEvent]:
        return self.events_after(0, appointment_id=appointment_id, limit=10_000)

    def events_after(self, event_id: int, *, limit: int = 500,
                     appointment_id: int | None = None) -> list[AppointmentEvent]:
        """History rows after `event_id`, oldest first: how a webhook feed or `changed_since` keeps up."""
        clause = " AND e.appointment_id = ?" if appointment_id is not None else ""
        params: tuple[Any, ...] = (event_id, appointment_id) if appointment_id is not None else (event_id,)
        rows = self.db.all(
            "SELECT e.*, a.external_id FROM appointment_events e JOIN appointments a ON a.id = e.appointment_id"
            f" WHERE e.id > ?{clause} ORDER BY e.id LIMIT ?", (*params, limit))
        return [AppointmentEvent(int(r["id"]), int(r["appointment_id"]), r["external_id"], r["at"], r["kind"],
                                 r["source"], json.loads(r["details"])) for r in rows]

    # -- reminders -----------------------------------------------------------------------------------
    def reminders(self, appointment_id: int, *, states: Sequence[str] | None = None) -> list[StoredReminder]:
        rows = self.db.all("SELECT * FROM appointment_reminders WHERE appointment_id = ? ORDER BY send_at, id",
                           (appointment_id,))
        found = [_reminder(r) for r in rows]
        return [r for r in found if states is None or r.state in states]

    def apply_reminders(self, appointment_id: int, diff: ReminderDiff,
                        superseded: Iterable[int] = ()) -> None:
        """Write the planner's decision. `superseded` are cancelled reminders whose message had already
        gone out: they are kept as history of what the patient was told, not marked as never sent."""
        if diff.empty:
            return
        gone = set(superseded)
        now = self.db.now()
        for_start = ts(diff.for_start)
        statements: list[tuple[str, Sequence[Any]]] = []
        for c in diff.cancel:
            statements.append(("UPDATE appointment_reminders SET state = ?, reason = ?, updated_at = ?"
                               " WHERE id = ? AND appointment_id = ?",
                               ("superseded" if c.reminder_id in gone else "cancelled", c.reason, now, c.reminder_id,
                                appointment_id)))
        for r in diff.retime:
            statements.append(("UPDATE appointment_reminders SET send_at = ?, for_start = ?, updated_at = ?"
                               " WHERE id = ? AND appointment_id = ? AND state = 'pending'",
                               (ts(r.send_at), for_start, now, r.reminder_id, appointment_id)))
        if diff.create:
            values = ", ".join(["(?,?,?,?,?,'pending',?,?)"] * len(diff.create))
            statements.append(("INSERT INTO appointment_reminders (appointment_id, step, confirm, send_at, for_start,"
                               f" state, created_at, updated_at) VALUES {values}",
                               [v for n in diff.create
                                for v in (appointment_id, n.step, int(n.confirm), ts(n.send_at), for_start, now, now)]))
        if len(statements) == 1:  # one statement is atomic by itself: no savepoint to pay for
            self.db.execute(*statements[0])
            return
        with self.db.transaction():
            for sql, params in statements:
                self.db.execute(sql, params)

    def mark_reminder_queued(self, reminder_id: int, message_id: int) -> None:
        """The reminder's message is in the outbox now (called by whoever queues it, in the same commit)."""
        with self.db.transaction():
            cur = self.db.execute("UPDATE appointment_reminders SET state = 'queued', message_id = ?, updated_at = ?"
                                  " WHERE id = ? AND state = 'pending'", (message_id, self.db.now(), reminder_id))
            if cur.rowcount != 1:
                raise NotFound(f"no pending reminder #{reminder_id}")

    def due_reminders(self, now: datetime, *, limit: int = 500) -> list[StoredReminder]:
        rows = self.db.all("SELECT * FROM appointment_reminders WHERE state = 'pending' AND send_at <= ?"
                           " ORDER BY send_at, id LIMIT ?", (ts(now), limit))
        return [_reminder(r) for r in rows]


def _modified(item: AppointmentInput) -> str | None:
    return ts(item.modified_at) if item.modified_at is not None and item.modified_at.tzinfo is not None else None


def _older(item: AppointmentInput, stored: dict[str, Any]) -> str | None:
    """Why `item` is older than the stored copy, or None. SEQUENCE decides first (a calendar bumps it on
    every significant change); between equal sequences, an earlier LAST-MODIFIED is older."""
    have_rev, have_mod = stored["source_revision"], stored["source_modified_at"]
    if item.revision is not None and have_rev is not None:
        if item.revision < have_rev:
            return (f"revision {item.revision} is older than the stored revision {have_rev} "
                    f"(from {stored['source']}); nothing was changed")
        if item.revision > have_rev:
            return None
    modified = _modified(item)
    if modified is not None and have_mod is not None and modified < have_mod:
        return (f"last modified {modified}, before the stored copy's {have_mod} (from {stored['source']}); "
                "nothing was changed")
    return None


def _next_status(stored: str, source_said: str, incoming: str, retimed: bool) -> str:
    """The status after an update from a source that last said `source_said`.

    - A source repeating what it said before has nothing new to say about the status: a patient's
      cancellation since then stands, even if the visit moved (nobody booked it again), and so does a
      confirmation, unless the visit moved.
    - A moved start makes a booked appointment rescheduled: the patient confirmed the old time.
    - A source saying "booked" does not undo a patient's confirmation; after a cancellation it is a new
      booking.
    """
    if incoming == source_said and stored not in ACTIVE_STATUSES:
        return stored
    if retimed:
        return "rescheduled" if incoming == "booked" else incoming
    if incoming == source_said:
        return stored
    if incoming == "booked":
        return stored if stored in ACTIVE_STATUSES else "booked"
    return incoming


def _utc(text: str) -> datetime:
    """A stored time (`ts`'s form) read back; `fromisoformat` reads it several times faster than `strptime`."""
    return datetime.fromisoformat(text)


def _appointment(row: dict[str, Any]) -> Appointment:
    return Appointment(
        id=int(row["id"]), external_id=row["external_id"], contact_id=int(row["contact_id"]), number=row["number"],
        patient_name=row["patient_name"], first_name=row["first_name"], language=row["language"],
        contact_timezone=row["contact_timezone"], provider=row["provider"], location=row["location"],
        appointment_type=row["appointment_type"], start=_utc(row["start_at"]), timezone=row["timezone"],
        all_day=bool(row["all_day"]), duration_minutes=row["duration_minutes"], status=row["status"],
        notes=row["notes"], source=row["source"], revision=row["source_revision"],
        modified_at=row["source_modified_at"], created_at=row["created_at"], updated_at=row["updated_at"],
    )


def _reminder(row: dict[str, Any]) -> StoredReminder:
    return StoredReminder(
        id=int(row["id"]), appointment_id=int(row["appointment_id"]), step=row["step"], confirm=bool(row["confirm"]),
        send_at=_utc(row["send_at"]), for_start=_utc(row["for_start"]), state=row["state"],
        message_id=row["message_id"], reason=row["reason"],
    )


def split_name(name: str | None, first: str | None) -> tuple[str | None, str | None]:
    """A source's whole name and first name as a contact's first and last name. "Jones, Robert" is last name
    first; otherwise the first name given stands and the rest of the whole name is the last name, and
    without one the last word is the last name."""
    name = (name or "").strip()
    if "," in name:
        family, given = (p.strip() for p in name.split(",", 1))
        return (first or given or None), (family or None)
    if first:
        if name.startswith(first):
            rest = name[len(first):].strip()
        elif name.endswith(first):
            rest = name[:-len(first)].strip()
        else:
            rest = ""
        return first, rest or None
    if not name:
        return None, None
    given, _, family = name.rpartition(" ")
    return (given.strip(), family) if given.strip() else (family, None)
