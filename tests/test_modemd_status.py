"""ModemStatus on a real SQLite file: a state and the alerts it opens or closes reach readers together."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from smsgate.modemd.modem_status import REACHED, ModemState, ModemStatus
from smsgate.queue import Store


@pytest.fixture
def reader(db_path: Path, store: Store) -> Iterator[Store]:
    """A second connection, as the status page or another process has."""
    s = Store.open(db_path)
    yield s
    s.close()


def _attached(store: Store) -> ModemStatus:
    status = ModemStatus("m1")
    status.attach(store, store.modems.upsert("m1", state=ModemState.STARTING.value, state_detail=None))
    return status


def _open_kinds(reader: Store) -> set[str]:
    return {a["kind"] for a in reader.alerts.open_alerts()}


def test_fall_opens_its_alert_and_closes_the_ones_it_replaces(store: Store, reader: Store) -> None:
    status = _attached(store)
    status.fall(ModemState.PAUSED, "errors", "modem_paused", "modem m1 paused", level="warning")
    status.fall(ModemState.NO_NETWORK, "denied", "no_network", "modem m1 is not registered", resolved=REACHED)
    row = reader.modems.by_name("m1")
    assert row is not None and (row["state"], row["state_detail"]) == ("no_network", "denied")
    assert _open_kinds(reader) == {"no_network"}


def test_rise_closes_the_alerts_that_no_longer_hold(store: Store, reader: Store) -> None:
    status = _attached(store)
    status.fall(ModemState.OFFLINE, "gone", "modem_offline", "modem m1 is offline")
    status.alert("storage_full", "modem m1 storage is full", level="warning")
    status.rise(*REACHED)
    row = reader.modems.by_name("m1")
    assert row is not None and row["state"] == "ready"
    assert _open_kinds(reader) == {"storage_full"}


def test_an_error_and_the_state_it_causes_are_one_commit(store: Store, reader: Store) -> None:
    status = _attached(store)
    with status.transaction():
        status.record_error(RuntimeError("port gone"))
        status.fall(ModemState.PAUSED, "3 modem errors in a row", "modem_paused", "modem m1 paused")
        row = reader.modems.by_name("m1")
        assert row is not None and (row["state"], row["last_error"]) == ("starting", None)
        assert _open_kinds(reader) == set()
    row = reader.modems.by_name("m1")
    assert row is not None and (row["state"], row["last_error"]) == ("paused", "port gone")
    assert _open_kinds(reader) == {"modem_paused"}


def test_without_a_store_the_state_still_changes_for_the_daemon_to_read() -> None:
    status = ModemStatus("m1")
    status.fall(ModemState.OFFLINE, "crashed", "worker_crashed", "the worker of modem m1 stopped")
    assert (status.state, status.detail) == (ModemState.OFFLINE, "crashed")
    status.rise()
    assert status.state is ModemState.READY


def test_falling_into_locked_keeps_the_sim_locked_alert_open_rather_than_reopening_it(
        store: Store, reader: Store) -> None:
    status = _attached(store)
    status.fall(ModemState.LOCKED, "PIN wrong", "sim_locked", "modem m1: wrong PIN", resolved=REACHED)
    first = [a["id"] for a in reader.alerts.open_alerts()]
    status.fall(ModemState.LOCKED, "PIN wrong", "sim_locked", "modem m1: wrong PIN", resolved=REACHED)
    assert [a["id"] for a in reader.alerts.open_alerts()] == first  # one alert, not a new one each time
    status.rise(*REACHED)  # the modem came up with its SIM unlocked
    assert _open_kinds(reader) == set()
