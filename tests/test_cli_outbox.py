"""`smsgate outbox`: what an admin needs to find what a crash left behind, without SQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from conftest import FakeClock

from smsgate.cli import cli
from smsgate.queue import Store

A = "+12025550123"
B = "+12025550124"


def run(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def rows(config: Path, *args: str) -> list[dict[str, Any]]:
    code, out = run(config, "outbox", "--json", *args)
    assert code == 0, out
    listed: list[dict[str, Any]] = json.loads(out)
    return listed


def _db(config: Path, clock: FakeClock | None = None) -> Store:
    return Store.open(config.parent / "smsgate.db", **({"clock": clock} if clock else {}))


def _left_by_a_crash(store: Store) -> int:
    """A three-part reminder whose part 1 went out from m1 and whose part 2 was on the air at the crash."""
    m1 = store.modems.upsert("m1", state="ready")
    mid = store.outbox.enqueue(A, "x" * 400, idempotency_key="appt-881-reminder").id
    (claim,) = store.outbox.claim("host:1:m1", m1)
    store.outbox.mark_submitting(claim, 1)
    store.outbox.mark_part_submitted(claim, 1, tp_mr=5)
    store.outbox.mark_submitting(claim, 2)
    store.outbox.expire_leases(owner_is_dead=lambda owner: True)
    return mid


def test_outbox_json_shows_the_key_attempts_modem_and_every_part(cli_config: Path) -> None:
    with _db(cli_config) as store:
        mid = _left_by_a_crash(store)
        msg = store.outbox.get(mid)
    (row,) = rows(cli_config, "--state", "unknown")
    assert row["id"] == mid and row["state"] == "unknown" and row["idempotency_key"] == "appt-881-reminder"
    assert row["attempts"] == 0 and row["max_attempts"] == 5 and row["modem"] == "m1"
    assert [(p["part"], p["state"], p["tp_mr"], p["modem"]) for p in row["parts"]] == [
        (1, "submitted", 5, "m1"), (2, "unknown", None, "m1"), (3, "pending", None, None)]
    # In the clinic's zone with its offset (the configuration `smsgate init` writes is on New York time).
    assert datetime.fromisoformat(row["created_at"]) == datetime.fromisoformat(msg.created_at).replace(microsecond=0)
    assert row["created_at"][-6:] in ("-05:00", "-04:00") and row["updated_at"][-6:] in ("-05:00", "-04:00")
    assert "may have gone" in row["error"]


def test_outbox_table_shows_the_same_facts(cli_config: Path) -> None:
    with _db(cli_config) as store:
        _left_by_a_crash(store)
    code, out = run(cli_config, "outbox")
    assert code == 0
    header, line = out.splitlines()[:2]
    for column in ("attempts", "modem", "key", "parts"):
        assert column in header.split()
    assert "appt-881-reminder" in line and "m1" in line and "submitted,unknown,pending" in line


def test_outbox_state_may_be_given_several_times(cli_config: Path) -> None:
    with _db(cli_config) as store:
        crashed = _left_by_a_crash(store)
        queued = store.outbox.enqueue(B, "still waiting").id
        cancelled = store.outbox.enqueue(B, "not wanted").id
        store.outbox.cancel(cancelled, "staff")
    assert {r["id"] for r in rows(cli_config, "--state", "unknown", "--state", "queued")} == {crashed, queued}


@pytest.mark.parametrize("since", ["2h", "90m", "1d", "{today}", "{two_hours_ago}", "{two_hours_ago_offset}"])
def test_outbox_since_takes_a_duration_or_an_iso_date_or_time(cli_config: Path, since: str) -> None:
    now = datetime.now(UTC)
    old_clock = FakeClock(now - timedelta(days=3))
    with _db(cli_config, old_clock) as store:
        old = store.outbox.enqueue(A, "three days ago").id
    with _db(cli_config) as store:
        new = store.outbox.enqueue(B, "just now").id
    two_hours_ago = now - timedelta(hours=2)
    clinic = ZoneInfo("America/New_York")  # a time without an offset is the clinic's
    value = since.format(today=now.astimezone(clinic).strftime("%Y-%m-%d"),
                         two_hours_ago=two_hours_ago.astimezone(clinic).strftime("%Y-%m-%dT%H:%M"),
                         two_hours_ago_offset=two_hours_ago.astimezone(ZoneInfo("Asia/Tokyo")).isoformat(
                             "T", "minutes"))
    assert [r["id"] for r in rows(cli_config, "--since", value)] == [new]
    assert [r["id"] for r in rows(cli_config, "--since", "4d")] == [new, old]


@pytest.mark.parametrize("since", ["yesterday", "2 hours", "-3d", "2026-13-01", "0h5"])
def test_outbox_since_refuses_what_is_neither_a_date_nor_a_duration(cli_config: Path, since: str) -> None:
    code, out = run(cli_config, "outbox", "--since", since)
    assert code == 2 and "--since" in out and "2h" in out and "2026-12-01" in out


def test_outbox_all_lists_past_the_default_limit(cli_config: Path) -> None:
    with _db(cli_config) as store:
        store.outbox.enqueue_many([{"to": A, "text": f"campaign {i}"} for i in range(35)])
    assert len(rows(cli_config)) == 30
    assert len(rows(cli_config, "--all")) == 35
    listed = rows(cli_config, "--all")
    assert listed[0]["parts"] == [{"part": 1, "state": "pending", "tp_mr": None, "modem": None,
                                   "submitted_at": None, "status_code": None}]
