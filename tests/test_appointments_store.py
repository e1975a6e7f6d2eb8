"""`store.appointments.upsert`, the one writer every appointment source calls: keyed by the clinic's id,
idempotent, refusing older copies, and recording each change as an event row."""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from smsgate.queue import Store
from smsgate.queue.appointments import AppointmentInput, AppointmentRejected
from smsgate.queue.contacts import ContactValues

NY = ZoneInfo("America/New_York")


def visit(**changes: object) -> AppointmentInput:
    base = AppointmentInput(
        external_id="A-100", number="+12125550142", start=datetime(2026, 11, 25, 9, 30, tzinfo=NY),
        timezone="America/New_York", duration_minutes=30, patient_name="Maria Lopez", first_name="Maria",
        provider="Dr. Ana Rivera", location="Main St", appointment_type="Cleaning", notes="side entrance",
        revision=0, modified_at=datetime(2026, 11, 20, 15, 1, tzinfo=UTC))
    return dataclasses.replace(base, **changes)


def kinds(store: Store, appointment_id: int) -> list[str]:
    return [e.kind for e in store.appointments.events(appointment_id)]


def test_a_new_appointment_is_created_with_its_contact_and_a_created_event(store: Store) -> None:
    result = store.appointments.upsert(visit(), source="ics:calendar.ics")
    assert result.action == "created" and result.events == ("created",)
    stored = store.appointments.by_external_id("A-100")
    assert stored is not None and stored.id == result.appointment_id
    assert (stored.number, stored.patient_name, stored.first_name) == ("+12125550142", "Maria Lopez", "Maria")
    assert stored.start == datetime(2026, 11, 25, 14, 30, tzinfo=UTC)
    assert stored.local_start.hour == 9 and stored.status == "booked" and stored.source == "ics:calendar.ics"
    contact = store.contacts.get("+12125550142")
    assert contact is not None and contact["name"] == "Maria Lopez"
    assert kinds(store, stored.id) == ["created"]


def test_sending_the_same_appointment_again_changes_nothing(store: Store) -> None:
    first = store.appointments.upsert(visit(), source="ics:calendar.ics")
    before = store.appointments.get(first.appointment_id or 0)
    again = store.appointments.upsert(visit(), source="fhir:other.json")
    assert again.action == "unchanged" and again.fields == () and again.events == ()
    assert store.appointments.get(first.appointment_id or 0) == before
    assert kinds(store, before.id) == ["created"]


def test_a_moved_start_is_recorded_as_rescheduled_and_the_status_says_so(store: Store) -> None:
    first = store.appointments.upsert(visit(), source="ics:a.ics")
    moved = store.appointments.upsert(visit(start=datetime(2026, 11, 26, 14, 0, tzinfo=NY), revision=1),
                                      source="ics:b.ics")
    assert moved.action == "updated" and set(moved.fields) == {"start_at", "status"}
    assert moved.events == ("rescheduled",)
    stored = store.appointments.get(first.appointment_id or 0)
    assert stored.status == "rescheduled" and stored.source == "ics:b.ics"
    event = store.appointments.events(stored.id)[-1]
    assert event.details == {"from": "2026-11-25T14:30:00.000000Z", "to": "2026-11-26T19:00:00.000000Z"}


def test_a_change_of_other_fields_is_an_updated_event_naming_old_and_new(store: Store) -> None:
    first = store.appointments.upsert(visit(), source="ics:a.ics")
    result = store.appointments.upsert(visit(location="Elm St", notes=None), source="ics:a.ics")
    assert result.action == "updated" and set(result.fields) == {"location", "notes"}
    event = store.appointments.events(first.appointment_id or 0)[-1]
    assert event.kind == "updated" and event.details == {"location": ["Main St", "Elm St"],
                                                         "notes": ["side entrance", None]}


def test_a_cancellation_is_a_cancelled_event(store: Store) -> None:
    first = store.appointments.upsert(visit(), source="ics:a.ics")
    result = store.appointments.upsert(visit(status="cancelled", revision=1), source="ics:a.ics")
    assert result.events == ("cancelled",)
    assert store.appointments.get(first.appointment_id or 0).status == "cancelled"


def test_a_cancelled_appointment_that_also_moved_is_cancelled_not_rescheduled(store: Store) -> None:
    first = store.appointments.upsert(visit(), source="ics:a.ics")
    result = store.appointments.upsert(visit(status="cancelled", start=datetime(2026, 11, 27, 9, 0, tzinfo=NY)),
                                       source="ics:a.ics")
    assert result.events == ("cancelled", "updated")
    assert "rescheduled" not in kinds(store, first.appointment_id or 0)


def test_a_source_saying_booked_does_not_undo_the_patients_confirmation(store: Store) -> None:
    first = store.appointments.upsert(visit(), source="ics:a.ics")
    appointment_id = first.appointment_id or 0
    assert store.appointments.record_answer(appointment_id, "confirmed", source="sms") == "confirmed"
    again = store.appointments.upsert(visit(notes="new note"), source="ics:a.ics")
    assert again.action == "updated" and again.fields == ("notes",)
    assert store.appointments.get(appointment_id).status == "confirmed"
    assert kinds(store, appointment_id) == ["created", "confirmed", "updated"]


def test_moving_a_confirmed_appointment_needs_a_new_confirmation(store: Store) -> None:
    first = store.appointments.upsert(visit(), source="ics:a.ics")
    appointment_id = first.appointment_id or 0
    store.appointments.record_answer(appointment_id, "confirmed", source="sms")
    store.appointments.upsert(visit(start=datetime(2026, 11, 26, 9, 30, tzinfo=NY)), source="ics:a.ics")
    assert store.appointments.get(appointment_id).status == "rescheduled"


def test_a_cancelled_appointment_booked_again_is_booked(store: Store) -> None:
    first = store.appointments.upsert(visit(status="cancelled"), source="ics:a.ics")
    result = store.appointments.upsert(visit(revision=1), source="ics:a.ics")
    assert result.fields == ("status",) and result.events == ("updated",)
    assert store.appointments.get(first.appointment_id or 0).status == "booked"


def test_a_lower_sequence_is_refused_and_changes_nothing(store: Store) -> None:
    first = store.appointments.upsert(visit(revision=2), source="ics:new.ics")
    older = store.appointments.upsert(visit(revision=1, start=datetime(2026, 12, 1, 9, 0, tzinfo=NY)),
                                      source="ics:old.ics")
    assert older.action == "refused" and older.reason is not None
    assert "revision 1 is older than the stored revision 2" in older.reason and "ics:new.ics" in older.reason
    stored = store.appointments.get(first.appointment_id or 0)
    assert stored.start == datetime(2026, 11, 25, 14, 30, tzinfo=UTC) and stored.source == "ics:new.ics"
    assert kinds(store, stored.id) == ["created"]


def test_an_earlier_last_modified_with_the_same_sequence_is_refused(store: Store) -> None:
    store.appointments.upsert(visit(), source="ics:a.ics")
    older = store.appointments.upsert(visit(modified_at=datetime(2026, 11, 19, tzinfo=UTC), notes="x"),
                                      source="ics:a.ics")
    assert older.action == "refused" and "last modified" in (older.reason or "")


def test_a_higher_sequence_wins_even_with_an_earlier_last_modified(store: Store) -> None:
    store.appointments.upsert(visit(), source="ics:a.ics")
    newer = store.appointments.upsert(visit(revision=1, modified_at=datetime(2026, 1, 1, tzinfo=UTC), notes="x"),
                                      source="ics:a.ics")
    assert newer.action == "updated"


def test_a_newer_copy_with_the_same_data_keeps_its_version_so_the_older_one_is_refused_later(store: Store) -> None:
    store.appointments.upsert(visit(revision=0), source="ics:a.ics")
    assert store.appointments.upsert(visit(revision=3), source="ics:a.ics").action == "unchanged"
    assert store.appointments.upsert(visit(revision=2, notes="stale"), source="ics:a.ics").action == "refused"


def test_a_name_staff_corrected_is_not_overwritten_by_the_next_import(store: Store) -> None:
    store.contacts.save("+12125550142", ContactValues(first_name="María", last_name="López"), actor="staff")
    store.appointments.upsert(visit(), source="ics:a.ics")
    contact = store.contacts.get("+12125550142")
    assert contact is not None and (contact["name"], contact["first_name"]) == ("María López", "María")


def test_a_contact_without_a_name_gets_the_one_the_source_gives(store: Store) -> None:
    store.contacts.ensure("+12125550142")
    store.appointments.upsert(visit(), source="ics:a.ics")
    contact = store.contacts.get("+12125550142")
    assert contact is not None and contact["first_name"] == "Maria"


def test_an_erased_contact_gets_no_name_back_from_an_import(store: Store) -> None:
    contact_id = store.contacts.ensure("+12125550142")
    store.execute("UPDATE contacts SET erased_at = ? WHERE id = ?", (store.now(), contact_id))
    store.appointments.upsert(visit(), source="ics:a.ics")
    contact = store.contacts.get("+12125550142")
    assert contact is not None and contact["name"] is None


def test_a_national_number_is_stored_in_international_form(db_path: Path) -> None:
    with Store.open(db_path, default_region="US") as store:
        store.appointments.upsert(visit(number="(212) 555-0142"), source="ics:a.ics")
        found = store.appointments.by_external_id("A-100")
        assert found is not None and found.number == "+12125550142"


@pytest.mark.parametrize(("changes", "message"), [
    ({"external_id": "  "}, "has no id"),
    ({"number": "call the desk"}, "is not a valid phone number"),
    ({"start": datetime(2026, 11, 25, 9, 30)}, "has no time zone"),
    ({"timezone": "Mars/Olympus"}, "is not a time zone"),
    ({"status": "maybe"}, "is not one of booked"),
    ({"duration_minutes": -5}, "is not possible"),
    ({"notes": "x" * 5000}, "at most 2000"),
])
def test_an_appointment_that_cannot_be_stored_is_rejected_and_nothing_is_written(
        store: Store, changes: dict[str, object], message: str) -> None:
    with pytest.raises(AppointmentRejected, match=message):
        store.appointments.upsert(visit(**changes), source="ics:a.ics")
    assert store.scalar("SELECT COUNT(*) FROM appointments") == 0
    assert store.scalar("SELECT COUNT(*) FROM contacts") == 0


def test_a_patient_asking_to_reschedule_is_recorded_and_leaves_the_status(store: Store) -> None:
    first = store.appointments.upsert(visit(), source="ics:a.ics")
    appointment_id = first.appointment_id or 0
    assert store.appointments.record_answer(appointment_id, "reschedule", source="sms") == "booked"
    assert kinds(store, appointment_id) == ["created", "reschedule_requested"]


def test_an_answer_to_a_cancelled_appointment_changes_nothing(store: Store) -> None:
    first = store.appointments.upsert(visit(status="cancelled"), source="ics:a.ics")
    assert store.appointments.record_answer(first.appointment_id or 0, "confirmed", source="sms") == "cancelled"
    assert kinds(store, first.appointment_id or 0) == ["created"]


def test_the_event_history_is_append_only(store: Store) -> None:
    store.appointments.upsert(visit(), source="ics:a.ics")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.execute("UPDATE appointment_events SET kind = 'updated'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.execute("DELETE FROM appointment_events")


def test_events_after_an_id_are_the_changes_since_then_in_order(store: Store) -> None:
    store.appointments.upsert(visit(), source="ics:a.ics")
    mark = store.appointments.events_after(0)[-1].id
    store.appointments.upsert(visit(external_id="A-200", number="+12125550143"), source="ics:a.ics")
    store.appointments.upsert(visit(status="cancelled", revision=1), source="ics:a.ics")
    since = store.appointments.events_after(mark)
    assert [(e.external_id, e.kind) for e in since] == [("A-200", "created"), ("A-100", "cancelled")]


def test_a_day_lists_the_appointments_starting_in_it(store: Store) -> None:
    store.appointments.upsert(visit(), source="ics:a.ics")
    store.appointments.upsert(visit(external_id="A-200", start=datetime(2026, 11, 26, 9, 0, tzinfo=NY)),
                              source="ics:a.ics")
    day = datetime(2026, 11, 25, tzinfo=NY)
    found = store.appointments.starting_between(day, day + timedelta(days=1))
    assert [a.external_id for a in found] == ["A-100"]


def test_a_patients_cancellation_is_not_undone_by_the_same_data_sent_again(store: Store) -> None:
    first = store.appointments.upsert(visit(), source="ics:a.ics")
    appointment_id = first.appointment_id or 0
    store.appointments.record_answer(appointment_id, "cancelled", source="sms")
    again = store.appointments.upsert(visit(), source="ics:a.ics")
    assert again.action == "unchanged"
    assert store.appointments.get(appointment_id).status == "cancelled"


def test_the_source_booking_again_after_cancelling_is_a_new_booking(store: Store) -> None:
    first = store.appointments.upsert(visit(), source="ics:a.ics")
    appointment_id = first.appointment_id or 0
    store.appointments.record_answer(appointment_id, "cancelled", source="sms")
    store.appointments.upsert(visit(status="cancelled", revision=1), source="ics:a.ics")
    store.appointments.upsert(visit(revision=2), source="ics:a.ics")
    assert store.appointments.get(appointment_id).status == "booked"


def test_the_source_confirming_what_the_patient_confirmed_changes_nothing_visible(store: Store) -> None:
    first = store.appointments.upsert(visit(), source="ics:a.ics")
    appointment_id = first.appointment_id or 0
    store.appointments.record_answer(appointment_id, "confirmed", source="sms")
    assert store.appointments.upsert(visit(status="confirmed"), source="ics:a.ics").action == "unchanged"
    assert store.appointments.upsert(visit(status="confirmed"), source="ics:a.ics").action == "unchanged"
    assert store.appointments.get(appointment_id).status == "confirmed"


def test_a_patients_cancellation_stands_when_the_source_moves_the_visit_without_booking_it_again(
        store: Store) -> None:
    first = store.appointments.upsert(visit(), source="ics:a.ics")
    appointment_id = first.appointment_id or 0
    store.appointments.record_answer(appointment_id, "cancelled", source="sms")
    moved = store.appointments.upsert(visit(start=datetime(2026, 11, 27, 9, 0, tzinfo=NY), revision=1),
                                      source="ics:a.ics")
    assert moved.events == ("updated",)
    assert store.appointments.get(appointment_id).status == "cancelled"
