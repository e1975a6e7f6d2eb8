"""`smsgate appointments import` and `smsgate appointments list`, through the real CLI on the configuration
`smsgate init` writes (clinic in America/New_York)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from click.testing import CliRunner, Result

from smsgate.cli import cli

DATA = Path(__file__).resolve().parent / "data" / "appointments"


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), "appointments", *args])


def test_an_import_lists_each_appointment_and_sums_up(cli_config: Path) -> None:
    result = run(cli_config, "import", str(DATA / "clinic-calendar.ics"))
    assert result.exit_code == 0, result.output
    assert "created   7kq2m9d1c0b8a5e4f3g2h1@google.com" in result.output
    assert result.output.strip().endswith("6 created, 0 updated, 0 unchanged, 0 refused as older, 0 with errors")


def test_importing_the_same_file_again_reports_every_item_unchanged(cli_config: Path) -> None:
    run(cli_config, "import", str(DATA / "fhir-bundle.json"))
    result = run(cli_config, "import", str(DATA / "fhir-bundle.json"))
    assert result.exit_code == 0 and "0 created, 0 updated, 6 unchanged" in result.output


def test_a_dry_run_stores_nothing(cli_config: Path) -> None:
    result = run(cli_config, "import", str(DATA / "clinic-calendar.ics"), "--dry-run")
    assert result.exit_code == 0 and "(dry run: nothing would be stored)" in result.output
    listed = run(cli_config, "list", "--date", "2026-11-25", "--json")
    assert json.loads(listed.output) == []


def test_the_json_report_has_the_counts_and_one_entry_per_item(cli_config: Path) -> None:
    result = run(cli_config, "import", str(DATA / "clinic-calendar-update.ics"), "--json")
    report = json.loads(result.output)
    assert report["kind"] == "ics" and report["counts"]["created"] == 4
    assert {i["external_id"] for i in report["items"]} >= {"9fj3k2l1m0n9@google.com"}


def test_bad_items_are_listed_the_good_ones_imported_and_the_exit_status_is_1(cli_config: Path) -> None:
    result = run(cli_config, "import", str(DATA / "broken.ics"))
    assert result.exit_code == 1
    assert "created   good-last@clinic.example" in result.output
    assert "error     VEVENT at line 41: it has no UID" in result.output
    assert "2 created, 0 updated, 0 unchanged, 0 refused as older, 8 with errors" in result.output
    listed = json.loads(run(cli_config, "list", "--date", "2026-12-04", "--json").output)
    assert [row["id"] for row in listed] == ["good-first@clinic.example", "good-last@clinic.example"]


def test_a_file_that_is_not_json_is_one_sentence_and_exit_status_1(cli_config: Path) -> None:
    result = run(cli_config, "import", str(DATA / "not-json.json"))
    assert result.exit_code == 1 and "error     file: this is not JSON" in result.output
    assert "Traceback" not in result.output


def test_a_missing_file_is_a_sentence_not_a_traceback(cli_config: Path, tmp_path: Path) -> None:
    result = run(cli_config, "import", str(tmp_path / "export.ics"))
    assert result.exit_code == 1 and "cannot read" in result.output and result.exception is not None
    assert isinstance(result.exception, SystemExit)


def test_a_day_lists_its_appointments_in_the_clinics_zone(cli_config: Path) -> None:
    run(cli_config, "import", str(DATA / "clinic-calendar.ics"))
    result = run(cli_config, "list", "--date", "2026-11-25")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Wednesday 2026-11-25 (America/New_York)"
    assert lines[2].startswith("09:30  30") and "Maria Lopez" in lines[2] and "+12125550142" in lines[2]


def test_the_json_list_has_the_local_start_and_the_next_reminder(cli_config: Path) -> None:
    run(cli_config, "import", str(DATA / "clinic-calendar.ics"))
    (row,) = json.loads(run(cli_config, "list", "--date", "2027-06-15", "--json").output)
    assert row["start"] == "2027-06-15T14:00:00-04:00" and row["patient"] == "Robert Jones"
    assert row["next_reminder"] == "2027-06-13 14:00" and row["status"] == "booked"


def test_an_all_day_appointment_is_listed_as_all_day(cli_config: Path) -> None:
    run(cli_config, "import", str(DATA / "clinic-calendar.ics"))
    (row,) = json.loads(run(cli_config, "list", "--date", "2026-11-27", "--json").output)
    assert row["time"] == "all day" and row["minutes"] == 1440


def test_today_is_the_clinics_today(cli_config: Path) -> None:
    before = datetime.now(ZoneInfo("America/New_York")).date()
    result = run(cli_config, "list", "--date", "today")
    after = datetime.now(ZoneInfo("America/New_York")).date()  # the command may run across midnight
    assert result.exit_code == 0
    assert result.output.startswith((f"{before:%A %Y-%m-%d}", f"{after:%A %Y-%m-%d}"))


def test_a_day_that_is_not_a_date_is_refused_with_the_forms_it_takes(cli_config: Path) -> None:
    result = run(cli_config, "list", "--date", "next tuesday")
    assert result.exit_code == 2 and "write today, tomorrow or a date such as" in result.output


def test_a_reminder_plan_mistake_in_the_configuration_stops_the_command_with_the_key_named(cli_config: Path) -> None:
    with cli_config.open("a", encoding="utf-8") as fh:
        fh.write('\n[[reminders]]\nbefore = "two days"\ntemplate = "Hi {first_name}"\n')
    result = run(cli_config, "list")
    assert result.exit_code == 1 and "reminders[0].before: 'two days' is not a duration" in result.output


def test_a_clinic_time_zone_that_is_not_one_is_a_sentence_naming_the_key(cli_config: Path) -> None:
    text = cli_config.read_text(encoding="utf-8").replace('timezone = "America/New_York"', 'timezone = "Eastern"')
    cli_config.write_text(text, encoding="utf-8")
    result = run(cli_config, "list")
    assert result.exit_code == 1 and "clinic.timezone = 'Eastern': 'Eastern' is not a time zone" in result.output
