"""The pages and their CSV exports show times in the clinic's zone (one Jinja filter, one export rule)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import FakeClock
from web_helpers import PASSWORD, PATIENT, WebEnv, add_modem, make_env, receive

from smsgate.clinic_time import ClinicClock
from smsgate.queue import Store
from smsgate.web.chart import hourly_chart

STORED_AT = datetime(2026, 11, 22, 18, 0, 0, tzinfo=UTC)  # 13:00 in New York, where the test clinic is


@pytest.fixture
def env(tmp_path: Path) -> Iterator[WebEnv]:
    e = make_env(tmp_path)
    e.store.accounts.add_user("sam", PASSWORD, "admin", actor="test")
    yield e
    e.store.close()


def at_stored_time(env: WebEnv) -> Store:
    return Store.open(env.config.database_path, clock=FakeClock(STORED_AT), default_region="US")


def test_the_audit_log_and_a_messages_history_show_clinic_time(env: WebEnv) -> None:
    with at_stored_time(env) as store:
        msg = store.outbox.enqueue(PATIENT, "Reminder").id
        store.outbox.cancel(msg, actor="test")
    client = env.login("sam")
    audit = client.get("/audit").get_data(as_text=True)
    assert "2026-11-22 13:00 EST" in audit and "2026-11-22 18:00" not in audit
    history = client.get(f"/outbox/{msg}").get_data(as_text=True)
    assert "2026-11-22 13:00 EST" in history and "18:00:00Z" not in history


def test_the_outbox_and_inbound_exports_give_clinic_time_with_its_offset(env: WebEnv) -> None:
    with at_stored_time(env) as store:
        store.outbox.enqueue(PATIENT, "Reminder")
        receive(store, add_modem(store), PATIENT, "YES")
    client = env.login("sam")
    for what, column in (("outbox", "created_at"), ("inbound", "received_at")):
        body = client.get(f"/export/{what}.csv").get_data(as_text=True)
        [row] = list(csv.DictReader(io.StringIO(body)))
        assert row[column] == "2026-11-22T13:00:00-05:00", (what, row)


def test_the_hourly_chart_labels_hours_in_clinic_time() -> None:
    rows = [{"hour": STORED_AT + timedelta(hours=i), "queued": 1, "received": 0, "delivered": 0, "failed": 0}
            for i in range(3)]
    chart = hourly_chart(rows, ClinicClock.named("America/New_York"))
    assert chart.bars[0].label == "13" and chart.bars[0].title.startswith("13:00 EST: 1 queued")
    half_hour = hourly_chart(rows, ClinicClock.named("Asia/Kolkata"))
    assert half_hour.bars[0].label == "23:30"
