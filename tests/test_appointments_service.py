"""`AppointmentService`: upsert and re-plan in one commit (the entry point every source calls), reminders that
follow cancellations and moves into the outbox, texts in the patient's language, whole-file imports."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import FakeClock

from smsgate.appointments.service import AppointmentService
from smsgate.config import Config, config_from_dict
from smsgate.queue import State, Store
from smsgate.queue.appointments import AppointmentInput

NY = ZoneInfo("America/New_York")
DATA = Path(__file__).resolve().parent / "data" / "appointments"
# The store's clock starts at 2026-11-22 18:00 UTC (13:00 in New York), a Sunday.
VISIT = datetime(2026, 11, 26, 10, 0, tzinfo=NY)


def config(**reminders_and_more: object) -> Config:
    return config_from_dict({"clinic": {"name": "Riverside", "timezone": "America/New_York", "region": "US"},
                             **reminders_and_more})


def visit(**changes: object) -> AppointmentInput:
    base = AppointmentInput(external_id="A-1", number="+12125550142", start=VISIT, timezone="America/New_York",
                            duration_minutes=30, first_name="Maria", patient_name="Maria Lopez",
                            provider="Dr. Rivera", location="Main St")
    return dataclasses.replace(base, **changes)


@pytest.fixture
def service() -> AppointmentService:
    return AppointmentService(config())


@pytest.fixture
def store(db_path: Path, clock: FakeClock) -> Iterator[Store]:
    """The store as `Store.for_config` opens it for a clinic in the US: national numbers are read as such."""
    s = Store.open(db_path, clock=clock, default_region="US")
    yield s
    s.close()


def pending(store: Store, appointment_id: int) -> list[tuple[str, datetime]]:
    rows = store.appointments.reminders(appointment_id, states=("pending",))
    return [(r.step, r.send_at.astimezone(NY)) for r in rows]


def test_an_upsert_stores_the_appointment_and_its_reminders_together(service: AppointmentService,
                                                                     store: Store) -> None:
    done = service.upsert(store, visit(), source="api")
    assert done.result.action == "created" and done.reminders is not None
    assert pending(store, done.result.appointment_id or 0) == [
        ("48h", datetime(2026, 11, 24, 10, 0, tzinfo=NY)), ("2h", datetime(2026, 11, 26, 8, 0, tzinfo=NY))]


def test_a_refused_upsert_plans_nothing(service: AppointmentService, store: Store) -> None:
    service.upsert(store, visit(revision=2), source="api")
    done = service.upsert(store, visit(revision=1, start=VISIT + timedelta(days=1)), source="api")
    assert done.result.action == "refused" and done.reminders is None


def test_moving_the_appointment_re_times_its_reminders(service: AppointmentService, store: Store) -> None:
    first = service.upsert(store, visit(), source="api")
    appointment_id = first.result.appointment_id or 0
    ids = [r.id for r in store.appointments.reminders(appointment_id)]
    service.upsert(store, visit(start=VISIT + timedelta(days=1)), source="api")
    assert [r.id for r in store.appointments.reminders(appointment_id)] == ids
    assert pending(store, appointment_id)[0] == ("48h", datetime(2026, 11, 25, 10, 0, tzinfo=NY))


def test_a_cancellation_stops_a_queued_reminder_still_in_the_outbox(service: AppointmentService, store: Store) -> None:
    first = service.upsert(store, visit(), source="api")
    appointment_id = first.result.appointment_id or 0
    reminder = store.appointments.reminders(appointment_id)[0]
    message = store.outbox.enqueue("+12125550142", "Reminder: Thursday 10:00. Reply YES to confirm")
    store.appointments.mark_reminder_queued(reminder.id, message.id)
    service.upsert(store, visit(status="cancelled"), source="api")
    assert store.outbox.get(message.id).state == State.CANCELLED
    states = {r.step: (r.state, r.reason) for r in store.appointments.reminders(appointment_id)}
    assert states == {"48h": ("cancelled", "the appointment is cancelled"),
                      "2h": ("cancelled", "the appointment is cancelled")}


def test_a_reminder_whose_message_is_already_on_its_way_is_kept_as_superseded(
        service: AppointmentService, store: Store) -> None:
    first = service.upsert(store, visit(), source="api")
    appointment_id = first.result.appointment_id or 0
    reminder = store.appointments.reminders(appointment_id)[0]
    message = store.outbox.enqueue("+12125550142", "Reminder: Thursday 10:00")
    store.appointments.mark_reminder_queued(reminder.id, message.id)
    (claim,) = store.outbox.claim("worker", None)
    assert claim.message.id == message.id
    service.upsert(store, visit(start=VISIT + timedelta(days=2)), source="api")
    rows = store.appointments.reminders(appointment_id)
    assert [(r.step, r.state) for r in rows if r.id == reminder.id] == [("48h", "superseded")]
    assert [r.step for r in rows if r.state == "pending"] == ["48h", "2h"]  # a new 48h for the new time


def test_a_patients_confirmation_drops_the_confirm_step_but_keeps_the_plain_one(
        service: AppointmentService, store: Store) -> None:
    first = service.upsert(store, visit(), source="api")
    appointment_id = first.result.appointment_id or 0
    assert service.answer(store, appointment_id, "confirmed", source="sms") == "confirmed"
    assert [step for step, _ in pending(store, appointment_id)] == ["2h"]


def test_a_patients_cancellation_cancels_every_waiting_reminder(service: AppointmentService, store: Store) -> None:
    first = service.upsert(store, visit(), source="api")
    appointment_id = first.result.appointment_id or 0
    assert service.answer(store, appointment_id, "cancelled", source="sms") == "cancelled"
    assert pending(store, appointment_id) == []
    assert [e.kind for e in store.appointments.events(appointment_id)] == ["created", "cancelled"]


def test_a_second_reminder_for_the_same_step_is_never_pending(service: AppointmentService, store: Store) -> None:
    first = service.upsert(store, visit(), source="api")
    appointment_id = first.result.appointment_id or 0
    for _ in range(3):
        service.replan(store, appointment_id)
    assert store.scalar("SELECT COUNT(*) FROM appointment_reminders WHERE state = 'pending'") == 2


def test_quiet_hours_are_read_in_the_contacts_own_zone_when_it_has_one(service: AppointmentService,
                                                                       store: Store) -> None:
    store.contacts.update("+12125550142", timezone="America/Los_Angeles", actor="staff")
    first = service.upsert(store, visit(), source="api")
    # 48 h before 10:00 New York is 07:00 in Los Angeles: quiet there, so it moves to 20:59 LA the evening before.
    (step, at) = pending(store, first.result.appointment_id or 0)[0]
    assert step == "48h" and at.astimezone(ZoneInfo("America/Los_Angeles")) == datetime(
        2026, 11, 23, 20, 59, tzinfo=ZoneInfo("America/Los_Angeles"))


def test_a_type_listed_in_no_reminders_for_gets_none(store: Store) -> None:
    service = AppointmentService(config(appointments={"no_reminders_for": ["walk-in"]}))
    done = service.upsert(store, visit(appointment_type="Walk-in"), source="api")
    assert store.appointments.reminders(done.result.appointment_id or 0) == []


def test_the_reminder_text_is_in_the_contacts_language_and_the_appointments_zone(store: Store) -> None:
    service = AppointmentService(config(reminders=[{
        "before": "48h", "confirm": True,
        "template": {"en": "Hi {first_name}: {weekday} {date} at {time} with {provider}.",
                     "es": "Hola {first_name}: {weekday} {date} a las {time} con {provider}."}}]))
    done = service.upsert(store, visit(), source="api")
    appointment = store.appointments.get(done.result.appointment_id or 0)
    (step,) = service.steps_for(appointment)
    assert service.reminder_text(appointment, step) == ("en", "Hi Maria: Thursday November 26 at 10:00 AM with "
                                                               "Dr. Rivera.")
    store.execute("UPDATE contacts SET language = 'es-US' WHERE number = '+12125550142'")
    appointment = store.appointments.get(appointment.id)
    assert service.reminder_text(appointment, step) == ("es", "Hola Maria: jueves 26 de noviembre a las 10:00 con "
                                                               "Dr. Rivera.")


def test_one_bad_item_of_a_batch_costs_only_itself(service: AppointmentService, store: Store) -> None:
    items = [visit(external_id="ok-1"), visit(external_id="bad", number="nope"), visit(external_id="ok-2")]
    done, errors = service.upsert_many(store, items, source="api")
    assert [u.result.external_id for u in done] == ["ok-1", "ok-2"]
    assert [e.item for e in errors] == ["appointment bad"] and "not a valid phone number" in errors[0].message
    assert store.scalar("SELECT COUNT(*) FROM appointments") == 2
    assert store.scalar("SELECT COUNT(*) FROM appointment_reminders") == 4


def test_a_dry_run_reports_what_would_change_and_stores_nothing(service: AppointmentService, store: Store) -> None:
    report = service.import_file(store, DATA / "clinic-calendar.ics", dry_run=True)
    assert report.dry_run and report.counts["created"] == 6
    assert "dry run: nothing would be stored" in report.lines()[-1]
    assert store.scalar("SELECT COUNT(*) FROM appointments") == 0
    assert store.scalar("SELECT COUNT(*) FROM contacts") == 0
    assert store.scalar("SELECT COUNT(*) FROM appointment_reminders") == 0


def test_an_import_says_when_each_reminder_goes_in_the_clinics_zone(service: AppointmentService,
                                                                    store: Store) -> None:
    report = service.import_file(store, DATA / "clinic-calendar.ics")
    line = next(x for x in report.lines() if "9fj3k2l1m0n9@google.com" in x)
    assert "48h at 2027-06-13 14:00" in line and "2h at 2027-06-15 12:00" in line


def test_a_missing_file_is_an_error_about_the_file(service: AppointmentService, store: Store,
                                                  tmp_path: Path) -> None:
    report = service.import_file(store, tmp_path / "nowhere.ics")
    assert [(e.item, "cannot read" in e.message) for e in report.errors] == [("file", True)]


def test_a_file_in_another_encoding_is_refused_with_a_sentence(service: AppointmentService, store: Store,
                                                             tmp_path: Path) -> None:
    path = tmp_path / "latin1.ics"
    path.write_bytes((DATA / "clinic-calendar.ics").read_bytes().replace(b"Maria", "Mª".encode("latin-1")))
    (error,) = service.import_file(store, path).errors
    assert "is not UTF-8 text" in error.message


def test_a_day_in_the_clinics_zone_has_23_hours_when_the_clocks_go_forward(service: AppointmentService) -> None:
    start, end = service.day_bounds(date(2027, 3, 14))
    assert end - start == timedelta(hours=23) and start == datetime(2027, 3, 14, 5, 0, tzinfo=UTC)


@pytest.fixture
def late_store(db_path: Path) -> Iterator[Store]:
    clock = FakeClock(datetime(2026, 11, 26, 13, 0, tzinfo=UTC))  # 08:00 in New York, two hours before the visit
    store = Store.open(db_path, clock=clock)
    yield store
    store.close()


def test_a_visit_booked_two_hours_ahead_gets_no_reminder_sent_late(service: AppointmentService,
                                                                   late_store: Store) -> None:
    done = service.upsert(late_store, visit(), source="api")
    assert late_store.appointments.reminders(done.result.appointment_id or 0) == []
    assert done.reminders is not None and {s.step for s in done.reminders.skipped} == {"48h", "2h"}
