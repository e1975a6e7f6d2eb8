"""The CLI reads the times people type, and writes the times they read, in the clinic's zone.

`cli_config` is what `smsgate init` writes (clinic.timezone = "America/New_York") on a server that runs on
UTC, as most do: the case where `--at 09:00` used to mean 04:00 in New York.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from conftest import FakeClock

from smsgate.cli import cli
from smsgate.queue import Store
from smsgate.queue.clock import parse_ts

PATIENT = "+12025550123"
NEW_YORK = ZoneInfo("America/New_York")
STORED_AT = datetime(2026, 11, 22, 18, 0, 0, tzinfo=UTC)  # 13:00 in New York


def run(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def open_store(config: Path) -> Store:
    return Store.open(config.parent / "smsgate.db", clock=FakeClock(STORED_AT))


def test_send_at_a_date_and_time_is_clinic_time_on_a_utc_server(cli_config: Path) -> None:
    code, out = run(cli_config, "send", PATIENT, "Flu shots this week", "--at", "2030-01-02 09:00")
    assert code == 0 and "not before 2030-01-02 09:00 EST" in out, out
    with open_store(cli_config) as store:
        assert store.outbox.get(1).due_at == "2030-01-02T14:00:00.000000Z"


def test_send_at_a_bare_time_is_the_next_such_time_at_the_clinic(cli_config: Path) -> None:
    before = datetime.now(UTC)
    code, out = run(cli_config, "send", PATIENT, "Flu shots this week", "--at", "09:00")
    assert code == 0, out
    with open_store(cli_config) as store:
        due = parse_ts(store.outbox.get(1).due_at)
    local = due.astimezone(NEW_YORK)
    assert (local.hour, local.minute) == (9, 0) and before < due <= before + timedelta(days=1, hours=1)
    code, out = run(cli_config, "send", PATIENT, "again", "--at", "tomorrow 09:00", "--key", "t")
    with open_store(cli_config) as store:
        tomorrow = parse_ts(store.outbox.get(2).due_at).astimezone(NEW_YORK)
    assert (tomorrow.hour, tomorrow.date()) == (9, datetime.now(NEW_YORK).date() + timedelta(days=1))


@pytest.mark.parametrize("typed", ["9am", "2030-02-30 09:00", "2030-03-10 02:30"])
def test_send_at_a_time_that_cannot_be_read_says_what_works_and_queues_nothing(cli_config: Path, typed: str) -> None:
    code, out = run(cli_config, "send", PATIENT, "hi", "--at", typed)
    assert code == 2 and "--at" in out and typed in out
    with open_store(cli_config) as store:
        assert store.outbox.recent(limit=5) == []


def test_tables_show_clinic_time_and_json_gives_iso_with_the_clinics_offset(cli_config: Path) -> None:
    with open_store(cli_config) as store:
        store.outbox.enqueue(PATIENT, "Reminder: Dr Rivera 3:15 PM tomorrow")
        store.inbox.store(modem_id=None, sender=PATIENT, body="YES", dedupe_key="k1")
        store.accounts.add_user("maria", "correct horse battery", "staff", actor="test")
        store.accounts.create_token("crm", "send", actor="test")
    for command, column in (("outbox", "created_at"), ("inbox", "received")):
        code, table = run(cli_config, command)
        assert code == 0 and "2026-11-22 13:00 EST" in table and "18:00" not in table, table
        [row] = json.loads(run(cli_config, command, "--json")[1])
        assert row[column] == "2026-11-22T13:00:00-05:00"
    for command in (("users", "list"), ("tokens", "list")):
        code, table = run(cli_config, *command)
        assert code == 0 and "2026-11-22 13:00 EST" in table, table
        [row] = json.loads(run(cli_config, *command, "--json")[1])
        assert row["created"] == "2026-11-22T13:00:00-05:00"


def test_consent_export_and_show_give_the_ledger_in_clinic_time(cli_config: Path) -> None:
    with open_store(cli_config) as store:
        store.consent.record(PATIENT, "opt_out", source="sms", actor="engine")
    code, out = run(cli_config, "consent", "export")
    assert code == 0
    [row] = list(csv.DictReader(io.StringIO(out)))
    assert row["time"] == "2026-11-22T13:00:00-05:00"
    code, out = run(cli_config, "consent", "show", PATIENT)
    assert code == 0 and "2026-11-22 13:00 EST  opt_out" in out, out
    assert "opted out of everything on 2026-11-22 13:00 EST (source sms" in out, out


def test_report_since_takes_a_clinic_day_and_refuses_what_is_no_day(cli_config: Path) -> None:
    assert run(cli_config, "report", "--since", "2026-11-22")[0] == 0
    code, out = run(cli_config, "report", "--since", "last week")
    assert code == 2 and "--since" in out and "is not a time" in out


def test_a_stopped_daemon_is_reported_with_its_stop_in_clinic_time(cli_config: Path) -> None:
    with open_store(cli_config) as store:
        store.set_status("daemon", {"running": False})
    code, out = run(cli_config, "status")
    assert code == 0 and "daemon: stopped (2026-11-22 13:00 EST)" in out, out
