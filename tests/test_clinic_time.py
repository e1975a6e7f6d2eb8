"""The clinic's wall clock: what people type is clinic time, what they read is clinic time, machines get offsets."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from smsgate.clinic_time import ClinicClock, ClinicTimeError, is_utc_zone, machine_zone_name, region_zones

NY = ClinicClock.named("America/New_York")
# Tuesday 1 December 2026, 10:30 in New York (15:30 UTC).
NOW = datetime(2026, 12, 1, 15, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("09:00", datetime(2026, 12, 2, 14, 0, tzinfo=UTC)),  # nine has passed today: tomorrow's nine
        ("11:00", datetime(2026, 12, 1, 16, 0, tzinfo=UTC)),  # still ahead today
        ("today 09:00", datetime(2026, 12, 1, 14, 0, tzinfo=UTC)),
        ("tomorrow 09:00", datetime(2026, 12, 2, 14, 0, tzinfo=UTC)),
        ("Tomorrow  9:05", datetime(2026, 12, 2, 14, 5, tzinfo=UTC)),
        ("2026-12-24 09:00", datetime(2026, 12, 24, 14, 0, tzinfo=UTC)),
        ("2026-12-24T09:00", datetime(2026, 12, 24, 14, 0, tzinfo=UTC)),
        ("2026-07-04 09:00", datetime(2026, 7, 4, 13, 0, tzinfo=UTC)),  # summer time: -04:00
        ("2026-12-24", datetime(2026, 12, 24, 5, 0, tzinfo=UTC)),  # midnight at the clinic
        ("2026-12-24T09:00:00-08:00", datetime(2026, 12, 24, 17, 0, tzinfo=UTC)),  # an offset means what it says
        ("2026-12-24T09:00Z", datetime(2026, 12, 24, 9, 0, tzinfo=UTC)),
        ("2026-11-01 01:30", datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),  # happens twice: the first (EDT)
    ],
)
def test_times_people_type_are_clinic_time(typed: str, meant: datetime) -> None:
    assert NY.parse(typed, now=NOW) == meant


def test_nine_oclock_is_five_hours_later_in_utc_for_a_new_york_clinic_whatever_the_server_runs_on() -> None:
    # The bug: on a UTC server `--at 09:00` was 09:00 UTC, which is 04:00 in New York.
    assert NY.parse("2026-12-24 09:00", now=NOW).astimezone(NY.zone).hour == 9


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("9am", "is not a time; write it as"),
        ("25:00", "not a time of day"),
        ("2026-02-30", "not a date"),
        ("2026-02-30 09:00", "not a date and time"),
        ("2026-03-08 02:30", "does not exist in America/New_York"),  # the hour the clocks skip
        ("", "is not a time"),
    ],
)
def test_a_time_that_cannot_be_read_is_refused_with_forms_that_work(typed: str, says: str) -> None:
    with pytest.raises(ClinicTimeError, match=says):
        NY.parse(typed, now=NOW)


def test_stored_times_are_shown_in_the_clinics_zone_and_given_to_machines_with_the_offset() -> None:
    assert NY.show("2026-11-22T18:49:17.123456Z") == "2026-11-22 13:49 EST"
    assert NY.show("2026-07-04T13:00:00.000000Z") == "2026-07-04 09:00 EDT"
    assert NY.iso("2026-11-22T18:49:17.123456Z") == "2026-11-22T13:49:17-05:00"
    assert NY.show(None) == "" and NY.iso(None) is None and NY.iso("") is None
    assert ClinicClock.named("Asia/Kolkata").show("2026-11-22T18:49:17.123456Z") == "2026-11-23 00:19 IST"


def test_unknown_zone_names_are_refused_with_an_example() -> None:
    with pytest.raises(ClinicTimeError, match='IANA name such as "America/New_York"'):
        ClinicClock.named("America/NewYork")


def test_utc_zones_and_the_zones_a_regions_numbers_are_in() -> None:
    assert is_utc_zone("UTC") and is_utc_zone("Etc/UTC") and is_utc_zone("Atlantic/Reykjavik")
    assert not is_utc_zone("Europe/London") and not is_utc_zone("America/New_York")
    assert region_zones("US")[0] == "America/New_York" and region_zones("GB")[0] == "Europe/London"


def test_the_machines_zone_comes_from_tz_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "America/Chicago")
    assert machine_zone_name() == "America/Chicago"
    monkeypatch.setenv("TZ", "Not/AZone")
    assert machine_zone_name() != "Not/AZone"  # falls through to the system's files, then UTC
