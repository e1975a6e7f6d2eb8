"""Appointments from iCalendar files: exports shaped like a calendar app's (tests/data/appointments/*.ics),
the RFC 5545 details (folding, parameters, escapes, zones, dates, durations) and broken input, item by item."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsgate.appointments.ical import IcsOptions, parse_ics, parse_line, text_value, unfold
from smsgate.appointments.plans import AppointmentsConfig
from smsgate.appointments.service import AppointmentService
from smsgate.appointments.sources import ParsedFile, SourceError
from smsgate.config import config_from_dict
from smsgate.queue import Store
from smsgate.queue.appointments import AppointmentInput
from smsgate.queue.clock import Clock

DATA = Path(__file__).resolve().parent / "data" / "appointments"
NY = ZoneInfo("America/New_York")
OPTIONS = IcsOptions.from_settings(AppointmentsConfig(), "America/New_York")


def parse(name: str, options: IcsOptions = OPTIONS) -> ParsedFile:
    return parse_ics((DATA / name).read_text(encoding="utf-8"), options)


def by_id(name: str) -> dict[str, AppointmentInput]:
    return {i.external_id: i for i in parse(name).items}


@pytest.fixture
def service() -> AppointmentService:
    return AppointmentService(config_from_dict({"clinic": {"timezone": "America/New_York", "region": "US"}}))


@pytest.fixture
def us_store(db_path: Path, clock: Clock) -> Iterator[Store]:
    store = Store.open(db_path, clock=clock, default_region="US")
    yield store
    store.close()


# --- the calendar app's export ---------------------------------------------------------------------------

def test_the_export_is_crlf_and_folded_as_calendar_apps_write_it() -> None:
    raw = (DATA / "clinic-calendar.ics").read_bytes()
    assert b"\r\n " in raw and b"\n" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 75


def test_an_event_in_the_files_vtimezone_is_read_in_that_zone_with_its_dst_rules() -> None:
    items = by_id("clinic-calendar.ics")
    winter = items["7kq2m9d1c0b8a5e4f3g2h1@google.com"]
    summer = items["9fj3k2l1m0n9@google.com"]
    assert winter.start.astimezone(UTC) == datetime(2026, 11, 25, 14, 30, tzinfo=UTC)  # EST, -5
    assert summer.start.astimezone(UTC) == datetime(2027, 6, 15, 18, 0, tzinfo=UTC)  # EDT, -4
    assert winter.timezone == summer.timezone == "America/New_York"
    assert (winter.duration_minutes, summer.duration_minutes) == (30, 60)


def test_the_fields_of_an_event_become_the_appointments_fields() -> None:
    a = by_id("clinic-calendar.ics")["7kq2m9d1c0b8a5e4f3g2h1@google.com"]
    assert a.number == "+1 212 555 0142" and (a.patient_name, a.first_name) == ("Maria Lopez", "Maria")
    assert a.provider == "Dr. Ana Rivera" and a.appointment_type == "Cleaning"
    assert a.location == "Riverside Family Clinic, Suite 200, 14 Main St"
    assert a.notes == ("Routine cleaning and check-up.\nPatient prefers morning appointments; please use the side "
                       "entrance on Elm St.")
    assert (a.status, a.revision, a.modified_at) == ("booked", 0, datetime(2026, 11, 20, 15, 1, tzinfo=UTC))


def test_a_tel_attendee_gives_the_number_and_its_cn_the_name() -> None:
    a = by_id("clinic-calendar.ics")["9fj3k2l1m0n9@google.com"]
    assert a.number == "+1-212-555-0144" and a.patient_name == "Jones, Robert" and a.first_name == "Robert"
    assert a.appointment_type == "New patient"  # the first of CATEGORIES:New patient,Intake


def test_an_all_day_event_starts_at_midnight_in_the_clinics_zone_and_lasts_a_day() -> None:
    a = by_id("clinic-calendar.ics")["allday-flu-clinic-20261127@google.com"]
    assert a.all_day and a.start == datetime(2026, 11, 27, tzinfo=NY) and a.duration_minutes == 24 * 60


def test_status_cancelled_cancels() -> None:
    assert by_id("clinic-calendar.ics")["c4nc3l1ed0042@google.com"].status == "cancelled"


def test_a_utc_time_is_utc_and_a_number_in_the_description_is_found() -> None:
    a = by_id("clinic-calendar.ics")["utc-evt-5@google.com"]
    assert a.start == datetime(2026, 12, 1, 15, 0, tzinfo=UTC) and a.number == "(212) 555-0147"
    assert a.timezone == "America/New_York"


def test_a_floating_time_is_read_in_the_clinics_zone_and_duration_gives_the_length() -> None:
    a = by_id("clinic-calendar.ics")["floating-6@google.com"]
    assert a.start == datetime(2026, 12, 2, 8, 30, tzinfo=NY) and a.duration_minutes == 45


def test_a_floating_time_follows_the_clinics_zone_setting() -> None:
    chicago = IcsOptions.from_settings(AppointmentsConfig(), "America/Chicago")
    a = {i.external_id: i for i in parse("clinic-calendar.ics", chicago).items}["floating-6@google.com"]
    assert a.start.astimezone(UTC) == datetime(2026, 12, 2, 14, 30, tzinfo=UTC)


def test_the_whole_export_is_read_without_errors() -> None:
    parsed = parse("clinic-calendar.ics")
    assert parsed.errors == [] and len(parsed.items) == 6


# --- zone names ---------------------------------------------------------------------------------------------

def test_zone_names_outlook_and_other_calendars_write_are_mapped_and_an_unknown_one_is_refused() -> None:
    parsed = parse("zone-names.ics")
    starts = {i.external_id: (i.start.astimezone(UTC), i.timezone) for i in parsed.items}
    outlook = next(k for k in starts if k.startswith("040000008200E000"))
    assert starts[outlook] == (datetime(2026, 12, 3, 15, 0, tzinfo=UTC), "America/New_York")  # "Eastern Standard Time"
    assert starts["lic-location-2@clinic.example"] == (datetime(2026, 12, 3, 16, 0, tzinfo=UTC), "America/Chicago")
    assert starts["mozilla-4@clinic.example"] == (datetime(2026, 12, 3, 18, 0, tzinfo=UTC), "America/Los_Angeles")
    (error,) = parsed.errors
    assert "custom-zone-3@clinic.example" in error.item
    assert "TZID 'Custom Zone 7' is not a time-zone name" in error.message and "X-LIC-LOCATION" in error.message


# --- RFC 5545 details ----------------------------------------------------------------------------------------

def test_unfolding_joins_continuation_lines_and_keeps_the_first_lines_number() -> None:
    text = "BEGIN:VEVENT\r\nDESCRIPTION:one\r\n  two\r\n\t three\r\nEND:VEVENT\r\n"
    assert unfold(text) == [(1, "BEGIN:VEVENT"), (2, "DESCRIPTION:one two three"), (5, "END:VEVENT")]


def test_bare_newlines_are_accepted_as_line_ends() -> None:
    assert unfold("A:1\nB:2\rC:3") == [(1, "A:1"), (2, "B:2"), (3, "C:3")]


def test_a_quoted_parameter_may_hold_colons_semicolons_and_commas() -> None:
    prop = parse_line('ATTENDEE;CN="Doe, Jane; MD: cardiology";ROLE=REQ-PARTICIPANT,CHAIR:tel:+12125550100', 1)
    assert prop.params == {"CN": ["Doe, Jane; MD: cardiology"], "ROLE": ["REQ-PARTICIPANT", "CHAIR"]}
    assert prop.value == "tel:+12125550100"


def test_text_escapes_are_undone() -> None:
    assert text_value(r"a\, b\; c\nd\\e\Nf") == "a, b; c\nd\\e\nf"


@pytest.mark.parametrize("line", ["no colon here", ";X=1:v", 'X;CN="open:v', "X;CN:v"])
def test_a_line_that_is_not_a_property_is_an_error_naming_its_line(line: str) -> None:
    with pytest.raises(SourceError, match="line 7"):
        parse_line(line, 7)


def wrap(*event_lines: str) -> str:
    return "\r\n".join(["BEGIN:VCALENDAR", "VERSION:2.0", "BEGIN:VEVENT", "UID:u1", "X-PATIENT-PHONE:+12125550100",
                        *event_lines, "END:VEVENT", "END:VCALENDAR", ""])


@pytest.mark.parametrize(("lines", "message"), [
    (["DTSTART:20261201T090000", "DTEND:20261201T093000", "DURATION:PT30M"], "both DTEND .* and DURATION"),
    (["DTSTART:20261201T090000", "DTEND:20261201T080000"], "ends .* before it starts"),
    (["DTSTART:20261201T090000", "DURATION:30 minutes"], "is not a duration"),
    (["DTSTART:20261201T090000", "DURATION:-PT30M"], "is negative"),
    (["DTSTART;VALUE=DATE:20261201", "DTEND:20261202T090000"], "both be dates or both date-times"),
    (["DTSTART:20261201T090000", "SEQUENCE:two"], "SEQUENCE 'two' .* is not a whole number"),
    (["DTSTART:20261201T090000", "RDATE:20261208T090000"], "recurring event"),
    (["SUMMARY:no start"], "has no DTSTART"),
])
def test_an_event_that_cannot_be_an_appointment_says_why(lines: list[str], message: str) -> None:
    parsed = parse_ics(wrap(*lines), OPTIONS)
    assert parsed.items == [] and len(parsed.errors) == 1
    assert re.search(message, parsed.errors[0].message), parsed.errors[0].message


def test_a_calendar_sent_with_method_cancel_cancels_its_events() -> None:
    text = wrap("DTSTART:20261201T090000").replace("VERSION:2.0", "VERSION:2.0\r\nMETHOD:CANCEL")
    assert [i.status for i in parse_ics(text, OPTIONS).items] == ["cancelled"]


def test_the_places_the_number_is_looked_for_are_configurable() -> None:
    text = wrap("DTSTART:20261201T090000", "X-MOBILE:+12125550199").replace("X-PATIENT-PHONE:+12125550100\r\n", "")
    only_mobile = IcsOptions.from_settings(AppointmentsConfig(ics_phone=("X-MOBILE",)), "UTC")
    assert [i.number for i in parse_ics(text, only_mobile).items] == ["+12125550199"]
    assert "looked in X-PATIENT-PHONE, ATTENDEE, DESCRIPTION" in parse_ics(text, OPTIONS).errors[0].message


def test_a_file_that_is_not_a_calendar_is_one_error_about_the_file() -> None:
    parsed = parse_ics("Subject,Start Date\nCheck-up,11/25/2026\n", OPTIONS)
    assert [(e.item, "not an iCalendar file" in e.message) for e in parsed.errors] == [("file", True)]


# --- broken input: clear errors per item, good items still imported ----------------------------------------

def test_each_broken_event_is_an_error_of_its_own_and_the_good_ones_are_read() -> None:
    parsed = parse("broken.ics")
    assert [i.external_id for i in parsed.items] == ["good-first@clinic.example", "words-for-a-number@clinic.example",
                                                     "good-last@clinic.example"]
    messages = {e.item: e.message for e in parsed.errors}
    assert "lost the space that folded lines start" in messages["VEVENT at line 31 (UID broken-fold@clinic.example)"]
    assert "no UID" in messages["VEVENT at line 41"]
    assert "recurring event (RRULE" in messages["VEVENT at line 52 (UID weekly-physio@clinic.example)"]
    assert "is not a date-time" in messages["VEVENT at line 60 (UID bad-date@clinic.example)"]
    assert "no patient number" in messages["VEVENT at line 66 (UID no-phone@clinic.example)"]
    assert "is never ended" in messages["VEVENT at line 71 (UID never-ended@clinic.example)"]
    assert "is not an iCalendar property line" in messages["file"]


def test_importing_the_broken_file_stores_the_good_events_and_reports_the_rest(
        service: AppointmentService, us_store: Store) -> None:
    report = service.import_file(us_store, DATA / "broken.ics")
    assert report.counts == {"created": 2, "updated": 0, "unchanged": 0, "refused": 0, "errors": 8}
    bad_number = next(e for e in report.errors if "words-for-a-number" in e.item)
    assert bad_number.item.startswith("VEVENT at line 46") and "is not a valid phone number" in bad_number.message
    assert {a.external_id for a in us_store.appointments.starting_between(
        datetime(2026, 12, 4, tzinfo=NY), datetime(2026, 12, 5, tzinfo=NY))} == {"good-first@clinic.example",
                                                                                  "good-last@clinic.example"}


# --- the export through the store ----------------------------------------------------------------------------

def test_importing_the_export_twice_changes_nothing_the_second_time(
        service: AppointmentService, us_store: Store) -> None:
    first = service.import_file(us_store, DATA / "clinic-calendar.ics")
    assert first.counts["created"] == 6 and first.errors == []
    events = len(us_store.appointments.events_after(0))
    reminders = us_store.all("SELECT * FROM appointment_reminders ORDER BY id")
    second = service.import_file(us_store, DATA / "clinic-calendar.ics")
    assert second.counts == {"created": 0, "updated": 0, "unchanged": 6, "refused": 0, "errors": 0}
    assert len(us_store.appointments.events_after(0)) == events
    assert us_store.all("SELECT * FROM appointment_reminders ORDER BY id") == reminders


def test_a_re_sent_event_with_a_higher_sequence_reschedules_and_a_lower_one_is_refused(
        service: AppointmentService, us_store: Store) -> None:
    service.import_file(us_store, DATA / "clinic-calendar.ics")
    report = service.import_file(us_store, DATA / "clinic-calendar-update.ics")
    actions = {u.result.external_id: u.result for u in report.done}
    moved = actions["7kq2m9d1c0b8a5e4f3g2h1@google.com"]
    assert moved.action == "updated" and moved.events == ("rescheduled",)
    lopez = us_store.appointments.by_external_id("7kq2m9d1c0b8a5e4f3g2h1@google.com")
    assert lopez is not None and lopez.status == "rescheduled" and lopez.revision == 1
    assert lopez.start == datetime(2026, 11, 26, 14, 0, tzinfo=NY)
    refused = actions["9fj3k2l1m0n9@google.com"]
    assert refused.action == "refused" and "revision 1 is older than the stored revision 2" in (refused.reason or "")
    jones = us_store.appointments.by_external_id("9fj3k2l1m0n9@google.com")
    assert jones is not None and jones.start.astimezone(NY).day == 15


def test_the_contacts_of_an_import_are_created_with_their_names(service: AppointmentService, us_store: Store) -> None:
    service.import_file(us_store, DATA / "clinic-calendar.ics")
    contact = us_store.contacts.get("+12125550144")
    assert contact is not None and (contact["name"], contact["first_name"]) == ("Robert Jones", "Robert")


# --- whatever text comes in, the reader answers with items and errors, never an exception ----------------------

_LINES = st.sampled_from([
    "BEGIN:VCALENDAR", "END:VCALENDAR", "BEGIN:VEVENT", "END:VEVENT", "BEGIN:VTIMEZONE", "END:VTIMEZONE",
    "BEGIN:VALARM", "END:VALARM", "UID:u", "DTSTART:20261201T090000", "DTSTART;TZID=Nowhere/City:20261201T090000",
    "DTSTART;VALUE=DATE:20261201", "DTEND:20261201T100000", "DURATION:PT30M", "DURATION:P", "STATUS:CANCELLED",
    "SEQUENCE:1", "SEQUENCE:x", "TZID:Nowhere/City", "X-LIC-LOCATION:America/Chicago", "X-PATIENT-PHONE:+12125550100",
    "ATTENDEE;CN=\"A, B\":tel:+12125550101", "ATTENDEE;CN=\"open:tel:1", "DESCRIPTION:Phone: (212) 555-0102\\n",
    "LAST-MODIFIED:20261120T000000Z", "RRULE:FREQ=DAILY", " folded", "\tfolded", "garbage", ":", ";", "",
    "CATEGORIES:a\\,b,c", "METHOD:CANCEL", "DTSTART:99999999T999999",
])


@settings(max_examples=400, deadline=None)
@given(st.lists(_LINES | st.text(max_size=12), max_size=40), st.sampled_from(["\r\n", "\n", "\r"]))
def test_any_text_is_read_into_items_and_errors_without_an_exception(lines: list[str], end: str) -> None:
    parse_ics(end.join(lines), OPTIONS)


def test_components_nested_very_deeply_inside_an_event_are_read_without_running_out_of_stack() -> None:
    depth = 5000
    nest = [*(f"BEGIN:X-{i}" for i in range(depth)), *(f"END:X-{i}" for i in reversed(range(depth)))]
    parsed = parse_ics(wrap("DTSTART:20261201T090000", *nest), OPTIONS)
    assert [i.external_id for i in parsed.items] == ["u1"] and parsed.errors == []
