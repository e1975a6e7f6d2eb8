"""`AppointmentService`: the one entry point every appointment source calls.

`upsert` stores an `AppointmentInput` (`store.appointments.upsert`) and re-plans its reminders in the
same commit, so an appointment is never stored without its reminders matching it. `upsert_many` does a
whole file in one commit with a savepoint per item: a refused item costs only itself, and a failure of
the store itself leaves nothing half-imported. `import_file` reads an `.ics` or FHIR `.json` file,
upserts what it could read and reports every item, good or bad (`--dry-run` rolls it all back).

The zone quiet hours are read in for a reminder is the patient's own (the contact's time zone) when known,
else the appointment's: someone coming to a visit in New York is most likely in New York.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from smsgate.config import Config
from smsgate.keywords.hours import HoursError, QuietHours, zone
from smsgate.queue import IllegalTransition, NotFound, Store
from smsgate.queue.appointments import (
    Appointment,
    AppointmentInput,
    AppointmentRejected,
    ReminderDiff,
    StoredReminder,
    UpsertResult,
)
from smsgate.queue.clock import ts

from .fhir import FhirOptions, parse_fhir
from .ical import IcsOptions, parse_ics
from .planner import plan_reminders
from .plans import ReminderStep
from .sources import ItemError, ParsedFile, SourceError, read_text
from .wording import language_for, local_values, render

__all__ = ["AppointmentService", "ImportReport", "Upserted", "read_appointments"]

ACTOR = "appointments"


@dataclass(frozen=True)
class Upserted:
    result: UpsertResult
    reminders: ReminderDiff | None = None


@dataclass
class ImportReport:
    """What an import did (or, with `dry_run`, would do), item by item."""

    path: str
    kind: str
    dry_run: bool
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    done: list[Upserted] = field(default_factory=list)
    errors: list[ItemError] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        c = Counter(u.result.action for u in self.done)
        return {"created": c["created"], "updated": c["updated"], "unchanged": c["unchanged"],
                "refused": c["refused"], "errors": len(self.errors)}

    def summary(self) -> str:
        c = self.counts
        verb = "would be" if self.dry_run else "were"
        return (f"{self.path}: {c['created']} created, {c['updated']} updated, {c['unchanged']} unchanged, "
                f"{c['refused']} refused as older, {c['errors']} with errors"
                + (f" (dry run: nothing {verb} stored)" if self.dry_run else ""))

    def lines(self) -> list[str]:
        out = []
        for u in self.done:
            r = u.result
            line = f"{r.action:<9} {r.external_id}"
            if r.action == "updated":
                line += f" ({', '.join(r.fields)}; {', '.join(r.events)})"
            if r.reason:
                line += f": {r.reason}"
            if u.reminders is not None:
                planned = [f"{n.step} at {self._local(n.send_at)}" for n in u.reminders.create]
                planned += [f"{t.step} moved to {self._local(t.send_at)}" for t in u.reminders.retime]
                planned += [f"{c.step} cancelled ({c.reason})" for c in u.reminders.cancel]
                if r.action in ("created", "updated"):
                    planned += [f"{s.step} skipped ({s.reason})" for s in u.reminders.skipped]
                if planned:
                    line += "; reminders: " + "; ".join(planned)
            out.append(line)
        out.extend(f"error     {e}" for e in self.errors)
        out.append(self.summary())
        return out

    def _local(self, at: datetime) -> str:
        return f"{at.astimezone(self.zone):%Y-%m-%d %H:%M}"

    def as_dict(self) -> dict[str, Any]:
        def diff(d: ReminderDiff | None) -> dict[str, Any] | None:
            if d is None:
                return None
            return {"create": [{"step": n.step, "send_at": ts(n.send_at), "confirm": n.confirm} for n in d.create],
                    "retime": [{"step": r.step, "send_at": ts(r.send_at)} for r in d.retime],
                    "cancel": [{"step": c.step, "reason": c.reason} for c in d.cancel],
                    "skipped": [{"step": s.step, "reason": s.reason} for s in d.skipped]}

        return {
            "file": self.path, "kind": self.kind, "dry_run": self.dry_run, "counts": self.counts,
            "items": [{"external_id": u.result.external_id, "action": u.result.action,
                       "appointment_id": u.result.appointment_id, "fields": list(u.result.fields),
                       "events": list(u.result.events), "reason": u.result.reason,
                       "reminders": diff(u.reminders)} for u in self.done],
            "errors": [{"item": e.item, "message": e.message} for e in self.errors],
        }


class _DryRun(Exception):
    """Raised inside the import's transaction to roll it back."""


def read_appointments(path: Path, config: Config) -> ParsedFile:
    """Read `path` as iCalendar (.ics) or FHIR JSON (.json); other names are told apart by their content."""
    clinic_zone = config.clinic.timezone or "UTC"
    try:
        text = read_text(path)
    except SourceError as exc:
        return ParsedFile("unknown", errors=[ItemError("file", str(exc))])
    suffix = path.suffix.lower()
    head = text.lstrip()[:15].upper()
    if suffix in (".ics", ".ical", ".ifb", ".icalendar") or (suffix != ".json" and head.startswith("BEGIN:VCALENDAR")):
        return parse_ics(text, IcsOptions.from_settings(config.appointments, clinic_zone))
    if suffix == ".json" or head[:1] in ("{", "["):
        return parse_fhir(text, FhirOptions(clinic_zone))
    return ParsedFile("unknown", errors=[ItemError(
        "file", f"{path.name} is neither an iCalendar file (.ics) nor FHIR JSON (.json)")])


class AppointmentService:
    """Appointments and their reminders under one configuration (plans, quiet hours, the clinic's zone)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.plans = config.reminders
        self.quiet = QuietHours(config.hours.quiet_start, config.hours.quiet_end)
        try:
            self.clinic_zone = zone(config.clinic.timezone or "UTC")
        except HoursError as exc:
            raise HoursError(f"clinic.timezone: {exc}") from None

    # -- the entry point ---------------------------------------------------------------------------
    def upsert(self, store: Store, item: AppointmentInput, *, source: str, now: datetime | None = None) -> Upserted:
        """Store one appointment and bring its reminders in line, in one commit. `AppointmentRejected` (with
        nothing stored) when the item cannot be stored as given."""
        with store.transaction():
            return self._upsert(store, item, source, now or store.clock())

    def upsert_many(self, store: Store, items: Iterable[AppointmentInput], *, source: str,
                    now: datetime | None = None) -> tuple[list[Upserted], list[ItemError]]:
        """Every item in one commit. A rejected item is rolled back by the store's own savepoint around its
        upsert, before anything else of it was written, so it costs only itself."""
        done: list[Upserted] = []
        errors: list[ItemError] = []
        with store.transaction(), store.large_write():
            at = now or store.clock()
            for item in items:
                try:
                    done.append(self._upsert(store, item, source, at))
                except AppointmentRejected as exc:
                    errors.append(ItemError(item.label, str(exc)))
            if done:
                store.audit.record(ACTOR, "appointments.upsert", detail={
                    "source": source, **Counter(u.result.action for u in done), "errors": len(errors)})
        return done, errors

    def _upsert(self, store: Store, item: AppointmentInput, source: str, now: datetime) -> Upserted:
        result = store.appointments.upsert(item, source=source)
        appointment = result.appointment
        if result.action == "refused" or appointment is None:
            return Upserted(result)
        existing = [] if result.action == "created" else store.appointments.reminders(appointment.id)
        return Upserted(result, self._replan(store, appointment, existing, now))

    def import_file(self, store: Store, path: Path, *, dry_run: bool = False,
                    now: datetime | None = None) -> ImportReport:
        parsed = read_appointments(path, self.config)
        report = ImportReport(str(path), parsed.kind, dry_run, zone=self.clinic_zone, errors=list(parsed.errors))
        if not parsed.items:
            return report
        source = f"{parsed.kind}:{path.name}"
        try:
            with store.transaction():
                done, errors = self.upsert_many(store, parsed.items, source=source, now=now)
                report.done, report.errors = done, [*report.errors, *errors]
                if dry_run:
                    raise _DryRun
        except _DryRun:
            pass
        return report

    # -- reminders ---------------------------------------------------------------------------------
    def steps_for(self, appointment: Appointment) -> tuple[ReminderStep, ...]:
        return self.plans.plan_for(appointment.appointment_type)

    def zones_for(self, appointment: Appointment) -> list[ZoneInfo]:
        if appointment.contact_timezone:
            try:
                return [zone(appointment.contact_timezone)]
            except HoursError:
                pass
        return [ZoneInfo(appointment.timezone)]

    def replan(self, store: Store, appointment_id: int, *, now: datetime | None = None) -> ReminderDiff:
        """Plan the appointment's reminders again and apply the difference (after a patient's answer, or
        when the plans in the configuration changed)."""
        with store.transaction():
            appointment = store.appointments.get(appointment_id)
            return self._replan(store, appointment, store.appointments.reminders(appointment_id), now or store.clock())

    def answer(self, store: Store, appointment_id: int, outcome: str, *, source: str,
               now: datetime | None = None) -> str:
        """A patient's answer to a reminder (`confirmed`, `cancelled`, `reschedule`) recorded and the
        reminders re-planned in one commit (a confirmation ends the "please confirm" steps, a cancellation
        all of them); the new status. Not called by the rules engine yet (docs/appointments.md)."""
        with store.transaction():
            status = store.appointments.record_answer(appointment_id, outcome, source=source)
            self.replan(store, appointment_id, now=now)
            return status

    def _replan(self, store: Store, appointment: Appointment, existing: list[StoredReminder],
                now: datetime) -> ReminderDiff:
        """A queued reminder that must not go is stopped in the outbox if it is still there; one already on
        its way is kept as superseded."""
        diff = plan_reminders(appointment, self.steps_for(appointment), self.quiet, self.zones_for(appointment),
                              now, existing)
        gone: list[int] = []
        for c in diff.cancel:
            if c.message_id is None:
                continue
            try:
                store.outbox.cancel(c.message_id, ACTOR, reason=f"appointment reminder cancelled: {c.reason}")
            except IllegalTransition:
                gone.append(c.reminder_id)
            except NotFound:
                pass
        store.appointments.apply_reminders(appointment.id, diff, superseded=gone)
        return diff

    def reminder_text(self, appointment: Appointment, step: ReminderStep) -> tuple[str, str]:
        """(language, text) of `step` for `appointment`: in the contact's language when the step has a text
        in it, else the default one; times in the appointment's zone."""
        language = language_for(appointment.language, step.templates, self.plans.default_language)
        values = local_values(
            appointment.local_start, all_day=appointment.all_day, language=language,
            first_name=appointment.first_name, name=appointment.patient_name, provider=appointment.provider,
            location=appointment.location, appointment_type=appointment.appointment_type,
            clinic=self.config.clinic.name, contact=self.config.clinic.contact)
        return language, render(step.template_for(language), values)

    # -- reads -------------------------------------------------------------------------------------
    def day_bounds(self, day: date) -> tuple[datetime, datetime]:
        """The UTC instants a day in the clinic's zone starts and ends (23 or 25 hours on DST days)."""
        start = datetime.combine(day, datetime.min.time(), tzinfo=self.clinic_zone)
        end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=self.clinic_zone)
        return start.astimezone(UTC), end.astimezone(UTC)

    def on_day(self, store: Store, day: date) -> list[Appointment]:
        return store.appointments.starting_between(*self.day_bounds(day))

    def today(self, store: Store) -> date:
        return store.clock().astimezone(self.clinic_zone).date()
