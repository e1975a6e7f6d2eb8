"""Appointments from FHIR R4 JSON: a search Bundle with its included Patients, Practitioners and Locations, a
single Appointment with contained resources, and the garbage a server or a person can hand over."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smsgate.appointments.fhir import FhirOptions, parse_fhir
from smsgate.appointments.service import AppointmentService
from smsgate.appointments.sources import ParsedFile
from smsgate.config import config_from_dict
from smsgate.queue import Store
from smsgate.queue.appointments import AppointmentInput
from smsgate.queue.clock import Clock

DATA = Path(__file__).resolve().parent / "data" / "appointments"
OPTIONS = FhirOptions("America/Chicago")


def parse(name: str) -> ParsedFile:
    return parse_fhir((DATA / name).read_text(encoding="utf-8"), OPTIONS)


def bundle() -> dict[str, AppointmentInput]:
    parsed = parse("fhir-bundle.json")
    assert parsed.errors == []
    return {i.external_id: i for i in parsed.items}


@pytest.fixture
def us_store(db_path: Path, clock: Clock) -> Iterator[Store]:
    store = Store.open(db_path, clock=clock, default_region="US")
    yield store
    store.close()


def test_the_patient_participant_is_found_in_the_bundle_and_its_sms_number_preferred() -> None:
    a = bundle()["apt-1001"]
    assert a.number == "+12125550151"  # sms, though the home phone has the better rank
    assert (a.patient_name, a.first_name) == ("María José García", "María")


def test_practitioner_and_location_participants_give_their_names() -> None:
    a = bundle()["apt-1001"]
    assert a.provider == "Dr. Ana Rivera" and a.location == "Riverside Family Clinic - Main St"
    assert a.appointment_type == "Follow-up"
    assert a.notes == "Follow-up on blood test results\nPatient asked for an interpreter (Spanish)."


def test_start_end_and_version_are_read() -> None:
    a = bundle()["apt-1001"]
    assert a.start.astimezone(UTC) == datetime(2026, 11, 24, 15, 15, tzinfo=UTC) and a.duration_minutes == 30
    assert a.revision == 3 and a.modified_at is not None and a.modified_at.astimezone(UTC).hour == 15


def test_the_timezone_extension_of_the_location_names_the_zone_else_the_clinics_is_used() -> None:
    items = bundle()
    assert items["apt-1001"].timezone == "America/New_York"  # its Location says so
    assert items["apt-1002"].timezone == "America/Chicago"  # nothing says: the clinic's zone


def test_a_display_only_participant_with_a_reference_type_gives_the_name() -> None:
    assert bundle()["apt-1002"].provider == "Dr. Sam Okafor"


def test_a_mobile_phone_is_preferred_to_other_phones_and_an_old_one_is_never_used() -> None:
    items = bundle()
    assert items["apt-1002"].number == "+1 212 555 0154"
    assert items["apt-1003"].number == "+1 212 555 0154"  # Patient/pat-502/_history/2 is the same patient


def test_a_contained_patient_is_resolved_and_its_old_name_is_not_used() -> None:
    a = bundle()["apt-1004"]
    assert a.number == "+1 212 555 0156" and a.patient_name == "Joan Adaeze Okoro"
    assert a.appointment_type == "Vaccination" and a.duration_minutes == 15
    assert a.location == "Riverside Family Clinic - Main St"  # a relative reference to an entry


def test_a_patient_referenced_by_its_urn_fullurl_is_resolved() -> None:
    assert bundle()["apt-1005"].number == "+12125550157"


@pytest.mark.parametrize(("appointment", "status"), [
    ("apt-1001", "booked"), ("apt-1004", "booked"), ("apt-1002", "cancelled"), ("apt-1003", "no-show"),
    ("apt-1005", "completed"), ("apt-1006", "cancelled"),
])
def test_fhir_statuses_map_to_the_appointments_statuses(appointment: str, status: str) -> None:
    assert bundle()[appointment].status == status


def test_a_single_appointment_with_contained_patient_and_practitioner_is_read() -> None:
    parsed = parse("fhir-appointment.json")
    (a,) = parsed.items
    assert parsed.errors == [] and a.external_id == "apt-2001" and a.number == "+12125550158"
    assert a.provider == "Dr. Sam Okafor" and a.location == "Riverside Family Clinic - Elm St"
    assert a.appointment_type == "Routine appointment" and a.first_name == "Lucía"


def test_a_json_array_of_appointments_is_read_too() -> None:
    single = json.loads((DATA / "fhir-appointment.json").read_text(encoding="utf-8"))
    parsed = parse_fhir(json.dumps([single, {**single, "id": "apt-2002"}]), OPTIONS)
    assert [i.external_id for i in parsed.items] == ["apt-2001", "apt-2002"]


# --- garbage in, one clear error per item out ------------------------------------------------------------------

def test_a_file_that_is_not_json_is_one_error_about_the_file() -> None:
    parsed = parse("not-json.json")
    assert parsed.items == [] and [e.item for e in parsed.errors] == ["file"]
    assert "this is not JSON" in parsed.errors[0].message and "line 1" in parsed.errors[0].message


def test_a_bundle_of_other_resources_says_what_it_holds_instead() -> None:
    (error,) = parse("bundle-without-appointments.json").errors
    assert error.item == "file" and "no Appointment resource" in error.message
    assert "2 Observation, 1 Patient" in error.message


def test_an_operation_outcome_from_the_server_is_shown_as_its_error() -> None:
    (error,) = parse("operation-outcome.json").errors
    assert "Access token expired" in error.message


@pytest.mark.parametrize("document", ['"just text"', "42", '{"resourceType": "Patient", "id": "x"}', "null"])
def test_json_that_is_no_appointment_at_all_is_an_error_not_a_crash(document: str) -> None:
    parsed = parse_fhir(document, OPTIONS)
    assert parsed.items == [] and [e.item for e in parsed.errors] == ["file"]


def test_each_bad_entry_is_an_error_of_its_own_and_the_good_ones_are_read() -> None:
    parsed = parse("bundle-with-bad-entries.json")
    assert [i.external_id for i in parsed.items] == ["good-1", "bad-number", "good-2"]
    messages = {e.item: e.message for e in parsed.errors}
    assert "is not in the file" in messages["entry 1 (Appointment/missing-patient)"]
    assert "has no Patient participant" in messages["entry 2 (Appointment/only-a-doctor)"]
    assert "no phone or sms number" in messages["entry 3 (Appointment/email-only)"]
    assert "waitlist" in messages["entry 4 (Appointment/waiting)"]
    assert "has no time-zone offset" in messages["entry 5 (Appointment/no-offset)"]
    assert "'maybe' is not an R4 Appointment status" in messages["entry 6 (Appointment/odd-status)"]
    assert "before it starts" in messages["entry 7 (Appointment/backwards)"]
    assert "is not a JSON object" in messages["entry 9"] and "is not a JSON object" in messages["entry 10"]


def test_importing_the_bad_bundle_stores_the_good_entries_and_names_the_bad_number(us_store: Store) -> None:
    service = AppointmentService(config_from_dict({"clinic": {"timezone": "America/New_York"}}))
    report = service.import_file(us_store, DATA / "bundle-with-bad-entries.json")
    assert report.counts["created"] == 2 and report.counts["errors"] == 10
    bad = next(e for e in report.errors if "bad-number" in e.item)
    assert bad.item == "entry 8 (bad-number)" and "is not a valid phone number" in bad.message
    assert us_store.appointments.by_external_id("good-2") is not None
    assert us_store.appointments.by_external_id("bad-number") is None


def test_importing_the_bundle_twice_changes_nothing_the_second_time(us_store: Store) -> None:
    service = AppointmentService(config_from_dict({"clinic": {"timezone": "America/New_York"}}))
    first = service.import_file(us_store, DATA / "fhir-bundle.json")
    assert first.counts["created"] == 6
    again = service.import_file(us_store, DATA / "fhir-bundle.json")
    assert again.counts["unchanged"] == 6 and again.counts["created"] == again.counts["updated"] == 0


# --- whatever JSON comes in, the reader answers with items and errors, never an exception ----------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["resourceType", "entry", "resource", "id", "status", "start", "end", "participant",
                         "actor", "reference", "telecom", "system", "value", "name", "given", "family", "contained",
                         "identifier", "meta", "extension", "appointmentType", "coding", "serviceType", "fullUrl",
                         "issue", "minutesDuration", "rank", "use", "prefix", "text", "display", "type"]),
        inner, max_size=6),
    max_leaves=30)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_json)
def test_any_json_is_read_into_items_and_errors_without_an_exception(document: object) -> None:
    for shaped in (document, {"resourceType": "Bundle", "entry": document},
                   {"resourceType": "Appointment", "id": "x", "status": "booked", "participant": document},
                   {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Appointment", "id": "a",
                    "status": "booked", "start": "2026-12-01T09:00:00Z",
                    "participant": [{"actor": {"reference": "#p"}}], "contained": [document]}}]}):
        parse_fhir(json.dumps(shaped), OPTIONS)


def test_json_nested_too_deeply_is_an_error_about_the_file() -> None:
    (error,) = parse_fhir("[" * 100_000 + "]" * 100_000, OPTIONS).errors
    assert error.item == "file" and "nested too deeply" in error.message
