"""`smsgate waitlist add|list|remove` through the real CLI on the configuration `smsgate init` writes
(clinic in America/New_York)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from smsgate.cli import cli


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), "waitlist", *args])


def test_staff_add_list_and_remove_a_waiting_patient_with_a_window_in_clinic_time(cli_config: Path) -> None:
    added = run(cli_config, "add", "+12125550161", "--provider", "Dr. Rivera", "--from", "2026-12-01 08:00",
                "--until", "2026-12-04 17:00", "--notes", "mornings")
    assert added.exit_code == 0, added.output
    assert "waitlist entry #1: +12125550161 is waiting" in added.output
    (row,) = json.loads(run(cli_config, "list", "--json").output)
    assert row["provider"] == "Dr. Rivera" and row["source"] == "staff" and row["notes"] == "mornings"
    assert row["earliest"].startswith("2026-12-01T08:00") and row["latest"].startswith("2026-12-04T17:00")
    assert "Dr. Rivera" in run(cli_config, "list").output
    removed = run(cli_config, "remove", "1")
    assert removed.exit_code == 0 and "removed" in removed.output
    assert json.loads(run(cli_config, "list", "--json").output) == []
    assert json.loads(run(cli_config, "list", "--all", "--json").output)[0]["state"] == "removed"


def test_mistakes_get_a_sentence_and_exit_1_and_store_nothing(cli_config: Path) -> None:
    bad_time = run(cli_config, "add", "+12125550161", "--from", "next week")
    assert bad_time.exit_code == 1 and "is not a time" in bad_time.output
    no_appointment = run(cli_config, "add", "+12125550161", "--appointment", "EHR-404")
    assert no_appointment.exit_code == 1 and "no appointment 'EHR-404'" in no_appointment.output
    assert run(cli_config, "add", "+12125550161").exit_code == 0
    twice = run(cli_config, "add", "+12125550161")
    assert twice.exit_code == 1 and "already on the waitlist (entry #1)" in twice.output
    missing = run(cli_config, "remove", "7")
    assert missing.exit_code == 1 and "no waitlist entry #7" in missing.output
    assert len(json.loads(run(cli_config, "list", "--json").output)) == 1
